import { defineModule, type ModuleHandler } from "../../statemachine/module.ts";
import {
  addNote,
  createModuleRow,
  hasNote,
  moveModuleRow,
  readModuleRow,
} from "../../statemachine/module-rows.ts";
import { type SubscriptionState, subscriptionContracts, subscriptionStates } from "./table.ts";

/**
 * The 7th module, added by the seed's five rules: it listens to the bus (1),
 * keeps its own row (2), is listed in MODULES_REQUIRED_FOR_COMPLETION (3),
 * terminates on cancel (4), and relies on the inbox for idempotency (5).
 */

const invoicePaid = "invoice-paid";

const openSubscription: ModuleHandler<SubscriptionState> = async (ctx) => {
  const lines = (ctx.event.payload.lines ?? []) as { sku: string; kind: string; quantity: number }[];
  const plans = lines
    .filter((l) => l.kind === "subscription")
    .map(({ sku, quantity }) => ({ sku, quantity }));
  if (plans.length === 0) return;
  if (!(await createModuleRow(ctx, { plans }))) return;
  // Finance may have been quicker than us: the payment we wait for is already in.
  if (await hasNote(ctx.tx, ctx.module.name, ctx.event.orderId, invoicePaid))
    await moveModuleRow(ctx, "active");
};

const activate: ModuleHandler<SubscriptionState> = async (ctx) => {
  if (await readModuleRow(ctx.tx, ctx.module, ctx.event.orderId)) await moveModuleRow(ctx, "active");
  else await addNote(ctx.tx, ctx.module.name, ctx.event.orderId, invoicePaid);
};

const terminate: ModuleHandler<SubscriptionState> = async (ctx) => {
  await moveModuleRow(ctx, "terminated");
};

export const subscription = defineModule({
  name: "subscription",
  entity: "Subscription",
  table: subscriptionContracts,
  initial: "pending",
  states: subscriptionStates,
  transitions: { pending: ["active", "terminated"], active: ["terminated"] },
  terminalHappy: "active",
  involvedIn: (order) => order.lines.some((l) => l.kind === "subscription"),
  graphql: {
    typeName: "SubscriptionModuleState",
    stateEnum: "SubscriptionState",
    stateField: "subscriptionState",
  },
  on: { OrderConfirmed: openSubscription, InvoicePaid: activate },
  onCancel: terminate,
});
