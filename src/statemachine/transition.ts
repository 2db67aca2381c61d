import { randomUUID } from "node:crypto";
import { type SQL, sql } from "drizzle-orm";
import { type Executor, queryAtCommit, type Tx } from "../db/database.ts";
import { assignments, wholeRow } from "../db/rows.ts";
import { type EnqueuedEvent, enqueue, type NewEvent, outboxInsert } from "../relay/outbox.ts";
import type { OrderMove } from "./decide.ts";
import { canMove, type OrderStatus, statusesBefore } from "./states.ts";
import { type OrderRow, salesOrders } from "./tables.ts";

export const orderStateChanged = "OrderStateChanged";
/** The order's whole row, for the statements of every transition (see wholeRow). */
export const orderRow = wholeRow(salesOrders);
/** Every module rolls back its part on it. */
export const orderCancelled = "OrderCancelled";

export interface MoveOptions {
  /** The last OrderStateChanged's id, when the caller stores it on the order too. */
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
  const [moved] = await orderRow.all(tx, guardedUpdate(order, to, options));
  if (!moved) return undefined;
  const [stateChanged] = await enqueue(tx, moveEvents(order, order.status, [to], options));
  return { order: moved, stateChanged: stateChanged! };
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
  const { insert, enqueued } = outboxInsert(
    moveEvents(order, order.status, [to], options),
    sql`exists (select from moved)`,
  );
  const [moved] = await orderRow.all(
    db,
    sql`with moved as (${guardedUpdate(order, to, options)}), events as (${insert}) select ${orderRow.columns} from moved`,
  );
  return moved && { order: moved, stateChanged: enqueued[0]! };
}

/** The cancel command's: cancelTransition as one statement of its own (see transitionOrderAtOnce). */
export async function cancelOrderAtOnce(
  db: Executor,
  order: Pick<OrderRow, "id" | "status" | "customerId">,
  reason: string,
  actor?: string,
): Promise<{ order: OrderRow; stateChanged: EnqueuedEvent } | undefined> {
  return transitionOrderAtOnce(db, order, "cancelled", cancellation(order, reason, {}, actor));
}

/** A move's UPDATE: from the status the order was read in, and only from one the transition table allows. */
function guardedUpdate(order: Pick<OrderRow, "id" | "status">, to: OrderStatus, options: MoveOptions): SQL {
  return sql`update ${salesOrders} set ${assignments(salesOrders, { ...options.set, status: to, updatedAt: new Date() })}
      where ${salesOrders.id} = ${order.id} and ${salesOrders.status} = ${order.status}
        and ${salesOrders.status} = any(${`{${statusesBefore(to).join(",")}}`}::text[])
      returning ${orderRow.columns}`;
}

/**
 * A move's events: an OrderStateChanged for each step of the path, in order
 * (the last one with the caller's id), then the move's domain events.
 */
function moveEvents(
  order: Pick<OrderRow, "id" | "customerId">,
  from: OrderStatus,
  path: readonly OrderStatus[],
  options: MoveOptions,
): NewEvent[] {
  return [
    ...path.map((to, i) => ({
      id: i === path.length - 1 ? options.eventId : undefined,
      type: orderStateChanged,
      orderId: order.id,
      // customerId lets the gateway tell who may see the change without reading the order.
      payload: {
        from: i === 0 ? from : path[i - 1]!,
        to,
        customerId: order.customerId,
        ...(options.reason ? { reason: options.reason } : {}),
      },
      actor: options.actor,
    })),
    ...(options.events ?? []).map((e) => ({ actor: options.actor, ...e })),
  ];
}

/**
 * What a cancel writes besides the status: the reason, the id of its
 * OrderStateChanged (a repeated cancel answers with it), and the
 * OrderCancelled every module rolls back on.
 */
function cancellation(
  order: Pick<OrderRow, "id" | "status">,
  reason: string,
  cancelledBy: { veto?: string },
  actor?: string,
): MoveOptions & { eventId: string; reason: string } {
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
  return transitionOrder(tx, order, "cancelled", cancellation(order, reason, cancelledBy, actor));
}

/**
 * Applies the moves of several orders the caller has locked, in one
 * statement whatever their number: an UPDATE that leaves each order in its
 * last move's state, and the outbox insert of every move's events in the
 * moves' order (so each order's changes keep theirs). Each order's UPDATE is
 * guarded by the state its first move started from; an order found in
 * another state inserts no event and fails the whole call, so the caller's
 * transaction rolls back rather than overwrite a change it did not decide
 * on. Returns the orders as moved.
 */
export async function applyOrderMoves(
  tx: Tx,
  orders: ReadonlyMap<string, Pick<OrderRow, "id" | "customerId">>,
  moves: readonly OrderMove[],
): Promise<OrderRow[]> {
  if (moves.length === 0) return [];
  const { moved, orderIds } = orderMoves(orders, moves);
  const rows = await orderRow.all(tx, sql`${moved} select ${orderRow.columns} from moved`);
  if (rows.length !== orderIds.length) {
    const found = new Set(rows.map((o) => o.id));
    const lost = orderIds.filter((id) => !found.has(id));
    throw new Error(`orders ${lost.join(", ")} were no longer in the state their moves started from`);
  }
  return rows;
}

/**
 * applyOrderMoves for a caller that reads nothing back (the orders
 * listener): the statement goes with the transaction's COMMIT (queryAtCommit),
 * a round trip less on every order's way to COMPLETED. The guard is then
 * PostgreSQL's: an order found in another state makes the statement fail
 * (a text that is no integer, naming the count), and with it the commit.
 */
export async function queueOrderMoves(
  tx: Tx,
  orders: ReadonlyMap<string, Pick<OrderRow, "id" | "customerId">>,
  moves: readonly OrderMove[],
): Promise<void> {
  if (moves.length === 0) return;
  const { moved, orderIds } = orderMoves(orders, moves);
  const count = orderIds.length;
  // The message is built from the count at run time: a constant would be folded, and fail, when planned.
  await queryAtCommit(
    tx,
    sql`${moved} select case when (select count(*) from moved) <> ${count}
        then ('orders were no longer in the state their moves started from: '
          || ${count} - (select count(*) from moved) || ' of ' || ${count})::int end`,
  );
}

/** The moves' WITH clauses, `moved` (the orders as updated) and their events' insert; the orders they move. */
function orderMoves(
  orders: ReadonlyMap<string, Pick<OrderRow, "id" | "customerId">>,
  moves: readonly OrderMove[],
): { moved: SQL; orderIds: string[] } {
  const rows = new Map<
    string,
    { id: string; from: OrderStatus; to: OrderStatus; reason?: string; cancelledEventId?: string }
  >();
  const events: NewEvent[] = [];
  for (const move of moves) {
    const order = orders.get(move.orderId);
    if (!order) throw new Error(`order ${move.orderId} is not among the locked orders`);
    const row = rows.get(move.orderId) ?? { id: move.orderId, from: move.from, to: move.from };
    if (row.to !== move.from)
      throw new Error(`order ${move.orderId}: a move from ${move.from} after ${row.to}`);
    move.path.forEach((to, i) => {
      const from = i === 0 ? move.from : move.path[i - 1]!;
      if (!canMove(from, to)) throw new Error(`order ${move.orderId}: no transition ${from} -> ${to}`);
    });
    const cancel =
      move.veto &&
      cancellation({ id: order.id, status: move.from }, move.veto.reason, { veto: move.veto.module });
    events.push(...moveEvents(order, move.from, move.path, cancel ?? {}));
    rows.set(move.orderId, {
      ...row,
      to: move.path.at(-1)!,
      ...(cancel ? { reason: cancel.reason, cancelledEventId: cancel.eventId } : {}),
    });
  }
  // One JSON parameter for every order; its columns are named apart from the table's, so RETURNING reads the order's.
  const json = JSON.stringify(
    [...rows.values()].map((r) => ({
      order_id: r.id,
      from_status: r.from,
      to_status: r.to,
      reason: r.reason ?? null,
      cancelled_event: r.cancelledEventId ?? null,
    })),
  );
  // The events only if every order moved (the call fails otherwise, but its caller may not roll back).
  const { insert } = outboxInsert(events, sql`(select count(*) from moved) = ${rows.size}`);
  const moved = sql`with moved as (update ${salesOrders} set
        "status" = m.to_status,
        "updated_at" = ${new Date().toISOString()}::timestamptz,
        "cancellation_reason" = coalesce(m.reason, ${salesOrders.cancellationReason}),
        "cancelled_event_id" = coalesce(m.cancelled_event, ${salesOrders.cancelledEventId})
      from jsonb_to_recordset(${json}::jsonb)
        as m(order_id uuid, from_status text, to_status text, reason text, cancelled_event uuid)
      where ${salesOrders.id} = m.order_id and ${salesOrders.status} = m.from_status
      returning ${orderRow.columns}),
      events as (${insert})`;
  return { moved, orderIds: [...rows.keys()] };
}

export async function lockOrder(tx: Tx, orderId: string): Promise<OrderRow | undefined> {
  const [order] = await orderRow.all(
    tx,
    sql`select ${orderRow.columns} from ${salesOrders} where ${salesOrders.id} = ${orderId} for update`,
  );
  return order;
}
