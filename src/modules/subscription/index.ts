import type { EventType } from "../../statemachine/events.ts";
import {
  type CancelDecider,
  type DecideOn,
  defineModule,
  type ModuleAction,
} from "../../statemachine/module.ts";
import { type SubscriptionState, subscriptionContracts, subscriptionStates } from "./table.ts";

/**
 * The 7th module, added by the seed's five rules: it listens to the bus (1),
 * keeps its own row (2), is listed in MODULES_REQUIRED_FOR_COMPLETION (3),
 * terminates on cancel (4), and relies on the inbox for idempotency (5).
 */

type Decide<E extends EventType> = DecideOn<E, SubscriptionState, typeof subscriptionContracts>;

const invoicePaid = "invoice-paid";

const openSubscription: Decide<"OrderConfirmed"> = ({ payload }, { notes }) => {
  const plans = payload.lines
    .filter((l) => l.kind === "subscription")
    .map(({ sku, quantity }) => ({ sku, quantity }));
  if (plans.length === 0) return [];
  // Finance may have been quicker than us: the payment we wait for is already in.
  const paid: ModuleAction<SubscriptionState>[] = notes.has(invoicePaid)
    ? [{ kind: "move", to: "active" }]
    : [];
  return [{ kind: "create", state: "pending", columns: { plans } }, ...paid];
};

const activate: Decide<"InvoicePaid"> = (_, { row }) =>
  row ? [{ kind: "move", to: "active" }] : [{ kind: "note", note: invoicePaid }];

const terminate: CancelDecider<SubscriptionState> = () => [{ kind: "move", to: "terminated" }];

export const subscription = defineModule({
  name: "subscription",
  table: subscriptionContracts,
  initial: "pending",
  states: subscriptionStates,
  events: {
    pending: "SubscriptionPending",
    active: "SubscriptionActive",
    terminated: "SubscriptionTerminated",
  },
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
