import { eq } from "drizzle-orm";
import { refuse } from "../errors.ts";
import { salesOrders } from "../statemachine/tables.ts";
import { canSee, requireCaller } from "./auth.ts";
import { builder } from "./builder.ts";
import { isUuid, OrderRef, OrderStatusEnum, visibleOrder } from "./order.ts";
import type { OrderStateChange } from "./order-feed.ts";

const OrderStateChangedEvent = builder.objectRef<OrderStateChange>("OrderStateChangedEvent").implement({
  fields: (t) => ({
    eventId: t.exposeID("eventId"),
    orderId: t.exposeID("orderId"),
    from: t.field({
      type: OrderStatusEnum,
      nullable: true,
      description: "Null for the first state.",
      resolve: (c) => c.from,
    }),
    to: t.field({ type: OrderStatusEnum, resolve: (c) => c.to }),
    occurredAt: t.field({ type: "DateTime", resolve: (c) => c.occurredAt }),
    order: t.field({
      type: OrderRef,
      description: "The order as of this change: its status is `to`; its other fields may be newer.",
      resolve: async (change, _args, ctx) => {
        const [order] = await ctx.database.db
          .select()
          .from(salesOrders)
          .where(eq(salesOrders.id, change.orderId));
        return { ...order!, status: change.to };
      },
    }),
  }),
});

builder.subscriptionField("orderStateChanged", (t) =>
  t.field({
    type: OrderStateChangedEvent,
    description:
      "Shared-state changes only (never module sub-states). With orderId: that order; without: every order the caller may see.",
    args: { orderId: t.arg.id(), after: t.arg.id() },
    subscribe: async (_root, args, ctx) => {
      const caller = requireCaller(ctx.auth);
      const orderId = args.orderId ?? undefined;
      // Another customer's order reads as no order at all.
      if (orderId !== undefined && !(await visibleOrder(ctx, orderId))) refuse("NOT_FOUND", "no such order");
      if (args.after != null && !isUuid(args.after))
        refuse("BAD_USER_INPUT", "after names no event you may see");
      return ctx.feed.subscribe(
        (change) => (orderId === undefined || change.orderId === orderId) && canSee(caller, change),
      );
    },
    resolve: (change) => change,
  }),
);
