import { randomUUID } from "node:crypto";
import { type SQL, sql } from "drizzle-orm";
import type { Executor, Tx } from "../db/database.ts";
import { assignments, wholeRow } from "../db/rows.ts";
import { type EnqueuedEvent, enqueue, type NewEvent, outboxInsert } from "../relay/outbox.ts";
import { type OrderStatus, statusesBefore } from "./states.ts";
import { type OrderRow, salesOrders } from "./tables.ts";

export const orderStateChanged = "OrderStateChanged";
/** The order's whole row, for the statements of every transition (see wholeRow). */
export const orderRow = wholeRow(salesOrders);
/** Every module rolls back its part on it. */
export const orderCancelled = "OrderCancelled";

export interface MoveOptions {
  /** The OrderStateChanged event's id, when the caller stores it on the order too. */
  eventId?: string;
  reason?: string;
  set?: Partial<typeof salesOrders.$inferInsert>;
  events?: NewEvent[];
  /** Who caused the move (`role:id`), on its events that name no other. */
  actor?: string;
}

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
  options: MoveOptions = {},
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
  options: MoveOptions,
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent[] } | undefined> {
  const { update, events } = orderMove(order, path, options);
  const [moved] = await orderRow.all(tx, update);
  if (!moved) return undefined;
  const enqueued = await enqueue(tx, events);
  return { order: moved, stateChanged: enqueued.slice(0, path.length) };
}

/**
 * The same move as transitionOrder, as one statement that is atomic on its
 * own, so a command needs no transaction and holds no lock between reading
 * the order and moving it: the guarded UPDATE and, only when it moved the
 * order, the events' INSERT (data-modifying CTEs). Undefined when the guard
 * matched nothing: the order is no longer in the status the caller read (a
 * concurrent change got there first), so the caller reads and decides again.
 */
export async function transitionOrderAtOnce(
  db: Executor,
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  to: OrderStatus,
  options: MoveOptions = {},
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent } | undefined> {
  const { update, events } = orderMove(order, [to], options);
  const { insert, enqueued } = outboxInsert(events, sql`exists (select from moved)`);
  const [moved] = await orderRow.all(
    db,
    sql`with moved as (${update}), events as (${insert}) select ${orderRow.columns} from moved`,
  );
  return moved && { order: moved, stateChanged: enqueued[0]! };
}

/**
 * A move's guarded UPDATE (from the status the order was read in, and only
 * from one the transition table allows), returning the whole row, and its
 * events: an OrderStateChanged for each step, then the domain events.
 */
function orderMove(
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  path: readonly OrderStatus[],
  options: MoveOptions,
): { update: SQL; events: NewEvent[] } {
  const steps = path.map((to, i) => ({ from: i === 0 ? order.status : path[i - 1]!, to }));
  for (const { from, to } of steps.slice(1))
    if (!statusesBefore(to).includes(from)) throw new Error(`no transition ${from} -> ${to}`);
  const to = path.at(-1)!;
  const update = sql`update ${salesOrders} set ${assignments(salesOrders, { ...options.set, status: to, updatedAt: new Date() })}
      where ${salesOrders.id} = ${order.id} and ${salesOrders.status} = ${order.status}
        and ${salesOrders.status} = any(${`{${statusesBefore(path[0]!).join(",")}}`}::text[])
      returning ${orderRow.columns}`;
  const events = [
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
      actor: options.actor,
    })),
    ...(options.events ?? []).map((e) => ({ actor: options.actor, ...e })),
  ];
  return { update, events };
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
  cancelledBy: { veto?: string } = {},
  actor?: string,
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent } | undefined> {
  return transitionOrder(tx, order, "cancelled", cancelling(order, reason, cancelledBy, actor));
}

/** The cancel command's: cancelTransition as one statement of its own (see transitionOrderAtOnce). */
export async function cancelOrderAtOnce(
  db: Executor,
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  reason: string,
  actor?: string,
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent } | undefined> {
  return transitionOrderAtOnce(db, order, "cancelled", cancelling(order, reason, {}, actor));
}

function cancelling(
  order: Pick<OrderRow, "id" | "status">,
  reason: string,
  cancelledBy: { veto?: string },
  actor: string | undefined,
): MoveOptions {
  const cancelledEventId = randomUUID();
  return {
    eventId: cancelledEventId,
    reason,
    actor: cancelledBy.veto ? `module:${cancelledBy.veto}` : actor,
    set: { cancellationReason: reason, cancelledEventId },
    events: [
      { type: orderCancelled, orderId: order.id, payload: { reason, from: order.status, ...cancelledBy } },
    ],
  };
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
