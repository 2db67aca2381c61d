import { refuse } from "../errors.ts";
import * as commands from "../statemachine/commands.ts";
import type { OrderRow } from "../statemachine/tables.ts";
import { actorOf, callerOf, canSee, customerOrAdmin, partnerOrAdmin } from "./auth.ts";
import type { Builder } from "./builder.ts";
import { type addOrders, isUuid } from "./order.ts";

export const orderId = (id: string): string => (isUuid(id) ? id : refuse("NOT_FOUND", "no such order"));

export function addMutations(builder: Builder, { OrderRef }: ReturnType<typeof addOrders>) {
  const OrderCommandPayload = builder
    .objectRef<{ order: OrderRow; eventId: string }>("OrderCommandPayload")
    .implement({
      description: "What a mutation did: the order as it stands and the outbox event it enqueued.",
      fields: (t) => ({
        order: t.field({ type: OrderRef, resolve: (p) => p.order }),
        eventId: t.exposeID("eventId"),
      }),
    });

  const OrderLineInput = builder.inputType("OrderLineInput", {
    fields: (t) => ({ sku: t.string({ required: true }), quantity: t.int({ required: true }) }),
  });

  const PlaceOrderInput = builder.inputType("PlaceOrderInput", {
    fields: (t) => ({
      lines: t.field({ type: [OrderLineInput], required: true }),
      contactEmail: t.string({ required: true }),
      idempotencyKey: t.string({
        required: true,
        description: "Same key, same caller: the same order comes back and nothing is enqueued twice.",
      }),
    }),
  });

  const ConfirmPaymentInput = builder.inputType("ConfirmPaymentInput", {
    fields: (t) => ({
      orderId: t.id({ required: true }),
      paymentReference: t.string({ required: true }),
      amount: t.int({ required: true }),
      currency: t.string({ required: true }),
    }),
  });

  const CancelOrderInput = builder.inputType("CancelOrderInput", {
    fields: (t) => ({ orderId: t.id({ required: true }), reason: t.string({ required: true }) }),
  });

  builder.mutationField("placeOrder", (t) =>
    t.field({
      type: OrderCommandPayload,
      description: "Customer. Creates a PENDING order.",
      authScopes: customerOrAdmin,
      args: { input: t.arg({ type: PlaceOrderInput, required: true }) },
      resolve: (_root, { input }, ctx) => {
        const caller = callerOf(ctx);
        return commands.placeOrder(ctx.commands, caller.id, input, actorOf(caller));
      },
    }),
  );

  builder.mutationField("confirmPayment", (t) =>
    t.field({
      type: OrderCommandPayload,
      description: "Payment provider (scope payments). The payment callback: PENDING -> CONFIRMED.",
      authScopes: partnerOrAdmin("payments"),
      args: { input: t.arg({ type: ConfirmPaymentInput, required: true }) },
      resolve: (_root, { input }, ctx) =>
        commands.confirmPayment(ctx.commands, orderId(input.orderId), input, actorOf(callerOf(ctx))),
    }),
  );

  builder.mutationField("cancelOrder", (t) =>
    t.field({
      type: OrderCommandPayload,
      description: "The order's customer or an admin. Every involved module rolls back.",
      authScopes: customerOrAdmin,
      args: { input: t.arg({ type: CancelOrderInput, required: true }) },
      resolve: (_root, { input }, ctx) => {
        const caller = callerOf(ctx);
        return commands.cancelOrder(
          ctx.commands,
          orderId(input.orderId),
          input.reason,
          (order) => canSee(caller, order),
          actorOf(caller),
        );
      },
    }),
  );

  return { OrderCommandPayload };
}
