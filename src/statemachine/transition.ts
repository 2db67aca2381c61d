import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Tx } from "../db/database.ts";
import { assignments, wholeRow } from "../db/rows.ts";
import { type EnqueuedEvent, enqueue, type NewEvent } from "../relay/outbox.ts";
import { type OrderStatus, statusesBefore } from "./states.ts";
import { type OrderRow, salesOrders } from "./tables.ts";

export const orderStateChanged = "OrderStateChanged";
/** The order's whole row, for the statements of every transition (see wholeRow). */
export const orderRow = wholeRow(salesOrders);
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
  const moved = await moveOrder(tx, order, [to], options);
  return moved && { order: moved.order, stateChanged: moved.stateChanged[0]! };
}

/**
 * Moves the order through several states at once (confirmed → fulfilling →
 * completed when both facts are known): one guarded UPDATE to the last, and
 * an OrderStateChanged for each step, in order, so subscribers still see
 * every change. Each step must be a transition the table allows.
 */
export async function transitionOrderThrough(
  tx: Tx,
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  path: readonly OrderStatus[],
): Promise<OrderRow | undefined> {
  return path.length === 0 ? undefined : (await moveOrder(tx, order, path, {}))?.order;
}

async function moveOrder(
  tx: Tx,
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  path: readonly OrderStatus[],
  options: {
    eventId?: string;
    reason?: string;
    set?: Partial<typeof salesOrders.$inferInsert>;
    events?: NewEvent[];
  },
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent[] } | undefined> {
  const steps = path.map((to, i) => ({ from: i === 0 ? order.status : path[i - 1]!, to }));
  for (const { from, to } of steps.slice(1))
    if (!statusesBefore(to).includes(from)) throw new Error(`no transition ${from} -> ${to}`);
  const to = path.at(-1)!;
  const [moved] = await orderRow.all(
    tx,
    sql`update ${salesOrders} set ${assignments(salesOrders, { ...options.set, status: to, updatedAt: new Date() })}
      where ${salesOrders.id} = ${order.id} and ${salesOrders.status} = ${order.status}
        and ${salesOrders.status} = any(${`{${statusesBefore(path[0]!).join(",")}}`}::text[])
      returning ${orderRow.columns}`,
  );
  if (!moved) return undefined;
  const enqueued = await enqueue(tx, [
    ...steps.map((step, i) => ({
      id: i === steps.length - 1 ? options.eventId : undefined,
      type: orderStateChanged,
      orderId: order.id,
      // customerId lets the gateway tell who may see the change without reading the order.
      payload: {
        from: step.from,
        to: step.to,
        customerId: order.customerId,
        ...(options.reason ? { reason: options.reason } : {}),
      },
    })),
    ...(options.events ?? []),
  ]);
  return { order: moved, stateChanged: enqueued.slice(0, steps.length) };
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

/** Locks these orders in id order (a fixed order: two callers never deadlock on them); answers their rows. */
export async function lockOrders(tx: Tx, orderIds: string[]): Promise<OrderRow[]> {
  if (orderIds.length === 0) return [];
  return orderRow.all(
    tx,
    sql`select ${orderRow.columns} from ${salesOrders}
      where ${salesOrders.id} = any(${`{${orderIds.join(",")}}`}::uuid[]) order by ${salesOrders.id} for update`,
  );
}

export async function lockOrder(tx: Tx, orderId: string): Promise<OrderRow | undefined> {
  const [order] = await orderRow.all(
    tx,
    sql`select ${orderRow.columns} from ${salesOrders} where ${salesOrders.id} = ${orderId} for update`,
  );
  return order;
}
