import { randomUUID } from "node:crypto";
import { and, eq, inArray } from "drizzle-orm";
import type { Tx } from "../db/database.ts";
import { type EnqueuedEvent, enqueue, type NewEvent } from "../relay/outbox.ts";
import { type OrderStatus, statusesBefore } from "./states.ts";
import { type OrderRow, salesOrders } from "./tables.ts";

export const orderStateChanged = "OrderStateChanged";
/** Every module rolls back its part on it. */
export const orderCancelled = "OrderCancelled";

/**
 * Moves the shared order to `to` with a guarded UPDATE (only from a state the
 * transition table allows) and enqueues OrderStateChanged with any domain
 * events, in the caller's transaction. Returns undefined when the order was
 * not in a state that allows it, so a late or repeated cause changes nothing.
 */
export async function transitionOrder(
  tx: Tx,
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  to: OrderStatus,
  options: {
    /** The OrderStateChanged event's id, when the caller stores it on the order too. */
    eventId?: string;
    reason?: string;
    set?: Partial<typeof salesOrders.$inferInsert>;
    events?: NewEvent[];
  } = {},
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent } | undefined> {
  const [moved] = await tx
    .update(salesOrders)
    .set({ ...options.set, status: to, updatedAt: new Date() })
    .where(
      and(
        eq(salesOrders.id, order.id),
        eq(salesOrders.status, order.status),
        inArray(salesOrders.status, statusesBefore(to)),
      ),
    )
    .returning();
  if (!moved) return undefined;
  const [stateChanged] = await enqueue(tx, [
    {
      id: options.eventId,
      type: orderStateChanged,
      orderId: order.id,
      // customerId lets the gateway tell who may see the change without reading the order.
      payload: {
        from: order.status,
        to,
        customerId: order.customerId,
        ...(options.reason ? { reason: options.reason } : {}),
      },
    },
    ...(options.events ?? []),
  ]);
  return { order: moved, stateChanged: stateChanged! };
}

/**
 * Cancels the order (a cancel or a module's veto): the shared state, the
 * reason, the OrderStateChanged whose id a repeated cancel answers with, and
 * the OrderCancelled every module rolls back on. Undefined when the order is
 * past cancelling.
 */
export async function cancelTransition(
  tx: Tx,
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  reason: string,
  cancelledBy: Record<string, unknown> = {},
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent } | undefined> {
  const cancelledEventId = randomUUID();
  return transitionOrder(tx, order, "cancelled", {
    eventId: cancelledEventId,
    reason,
    set: { cancellationReason: reason, cancelledEventId },
    events: [
      { type: orderCancelled, orderId: order.id, payload: { reason, from: order.status, ...cancelledBy } },
    ],
  });
}

/** Locks these orders in id order (a fixed order: two callers never deadlock on them). */
export async function lockOrders(tx: Tx, orderIds: string[]): Promise<void> {
  if (orderIds.length === 0) return;
  await tx
    .select({ id: salesOrders.id })
    .from(salesOrders)
    .where(inArray(salesOrders.id, orderIds))
    .orderBy(salesOrders.id)
    .for("update");
}

export async function lockOrder(tx: Tx, orderId: string): Promise<OrderRow | undefined> {
  const [order] = await tx.select().from(salesOrders).where(eq(salesOrders.id, orderId)).for("update");
  return order;
}
