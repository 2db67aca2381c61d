import { and, desc, eq, lte } from "drizzle-orm";
import { refuse } from "../errors.ts";
import type { Audience, OrderStateChange, StatusAt } from "../feed/order-feed.ts";
import { orderEvents } from "../relay/tables.ts";
import type { OrderStatus } from "../statemachine/states.ts";
import { type OrderRow, salesOrders } from "../statemachine/tables.ts";
import { orderStateChanged } from "../statemachine/transition.ts";
import { type Caller, callerOf, canSee, signedIn } from "./auth.ts";
import type { Builder, Context } from "./builder.ts";
import { type addOrders, isUuid, visibleOrder } from "./order.ts";

/** How long to wait for the relay to publish the event a client resumes after (it names it from a mutation's answer). */
const publishWaitMs = 10_000;

/** The stream position of an event the caller may see; anything else is BAD_USER_INPUT. */
async function resumePosition(ctx: Context, caller: Caller, eventId: string): Promise<number> {
  const unknown = () => refuse("BAD_USER_INPUT", "after names no event you may see");
  if (!isUuid(eventId)) return unknown();
  const deadline = Date.now() + publishWaitMs;
  for (;;) {
    const [found] = await ctx.database.db
      .select({ streamSeq: orderEvents.streamSeq, customerId: salesOrders.customerId })
      .from(orderEvents)
      .innerJoin(salesOrders, eq(salesOrders.id, orderEvents.orderId))
      .where(eq(orderEvents.id, eventId));
    if (!found || !canSee(caller, found)) return unknown();
    if (found.streamSeq !== null) {
      if (!(await ctx.feed.holds(found.streamSeq, eventId))) {
        if (await ctx.feed.removed(found.streamSeq))
          refuse(
            "BAD_USER_INPUT",
            "after names a change older than the event stream keeps (its retention, NATS_MAX_AGE_HOURS or NATS_MAX_BYTES, has removed it): subscribe without after, and read the orders for their current state",
          );
        refuse(
          "BAD_USER_INPUT",
          "after names a change the event stream no longer holds (the embedded bus starts empty after a restart): subscribe without after, and read the orders for their current state",
        );
      }
      return found.streamSeq;
    }
    if (Date.now() > deadline)
      throw new Error(`event ${eventId} still unpublished after ${publishWaitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What a resuming client has seen of an order: its last change published at or before the position. */
function statusAt(ctx: Context): StatusAt {
  return async (orderId, sequence) => {
    const [last] = await ctx.database.db
      .select({ payload: orderEvents.payload })
      .from(orderEvents)
      .where(
        and(
          eq(orderEvents.orderId, orderId),
          eq(orderEvents.type, orderStateChanged),
          lte(orderEvents.streamSeq, sequence),
        ),
      )
      .orderBy(desc(orderEvents.seq))
      .limit(1);
    return last?.payload.to as OrderStatus | undefined;
  };
}

/**
 * The order of a change, read once for every subscriber it goes to: the feed
 * hands each of them the same change object. Kept only as long as the change.
 */
const orderOfChange = new WeakMap<OrderStateChange, Promise<OrderRow | undefined>>();

function orderAsOf(ctx: Context, change: OrderStateChange): Promise<OrderRow | undefined> {
  let order = orderOfChange.get(change);
  if (!order) {
    order = readPatiently(() =>
      ctx.database.db
        .select()
        .from(salesOrders)
        .where(eq(salesOrders.id, change.orderId))
        .then(([row]) => row && { ...row, status: change.to }),
    );
    orderOfChange.set(change, order);
    // A read that failed for good is not kept: the change may be resolved again.
    order.catch(() => orderOfChange.delete(change));
  }
  return order;
}

/**
 * How long a change waits for its order to be read when the database does not
 * answer (a restart, a terminated connection): the change has already left
 * the stream, and failing the read would hand the subscriber an error in its
 * place, a change lost. Past it, the error goes out all the same.
 */
const changeReadPatienceMs = 30_000;

async function readPatiently<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + changeReadPatienceMs;
  for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
    try {
      return await read();
    } catch (error) {
      if (Date.now() + wait > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/** Whose changes the caller gets: a customer's own only, whatever the order named. */
function audienceOf(caller: Caller, orderId: string | undefined): Audience {
  return { orderId, customerId: caller.role === "customer" ? caller.id : undefined };
}

export function addSubscription(
  builder: Builder,
  { OrderRef, OrderStatusEnum }: ReturnType<typeof addOrders>,
): void {
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
          const order = await orderAsOf(ctx, change);
          if (!order) throw new Error(`order ${change.orderId} of change ${change.eventId} not found`);
          return order;
        },
      }),
    }),
  });

  builder.subscriptionField("orderStateChanged", (t) =>
    t.field({
      type: OrderStateChangedEvent,
      description: [
        "Shared-state changes only (never module sub-states). With orderId: that",
        "order; without: every order the caller may see. With after (the eventId of",
        "the last change the client saw): every later change first, then live, with",
        "no gap and no duplicate at the seam. Over SSE, Last-Event-ID does the same.",
      ].join("\n"),
      args: { orderId: t.arg.id(), after: t.arg.id() },
      authScopes: signedIn,
      subscribe: async (_root, args, ctx) => {
        const caller = callerOf(ctx);
        const orderId = args.orderId ?? undefined;
        // Another customer's order reads as no order at all.
        if (orderId !== undefined && !(await visibleOrder(ctx, orderId)))
          refuse("NOT_FOUND", "no such order");
        const audience = audienceOf(caller, orderId);
        const after = args.after ?? ctx.lastEventId;
        if (after == null) return ctx.feed.subscribe(audience, caller.id);
        const position = await resumePosition(ctx, caller, after);
        return ctx.feed.resume(position, audience, { callerId: caller.id, statusAt: statusAt(ctx) });
      },
      resolve: (change) => change,
    }),
  );
}
