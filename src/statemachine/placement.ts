/**
 * The placement's one statement: the order, its lines and its events written
 * together, atomic on its own, so placeOrder needs no transaction.
 */
import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/database.ts";
import { rowValues } from "../db/rows.ts";
import { type NewEvent, outboxInsert } from "../relay/outbox.ts";
import type { Placement } from "./decide.ts";
import { type OrderRow, orderLines, salesOrders } from "./tables.ts";
import { orderRow } from "./transition.ts";

/**
 * Inserts the order and, only when its key was free, its lines and its
 * events (data-modifying CTEs). Answers the order this statement placed
 * (`placed`), or the one placed under the key before it began; undefined
 * when a concurrent placement took the key since: its order is committed by
 * then (the unique index waited for it), and the next statement sees it.
 */
export async function insertPlacement(
  db: Executor,
  order: typeof salesOrders.$inferInsert,
  lines: Placement["lines"],
  events: NewEvent[],
): Promise<{ order: OrderRow; placed: boolean } | undefined> {
  const { insert: insertEvents } = outboxInsert(events, sql`exists (select from placed)`);
  const lineRows = JSON.stringify(
    lines.map((l, position) => ({
      position,
      sku: l.sku,
      name: l.name,
      kind: l.kind,
      quantity: l.quantity,
      unit_amount: l.unitAmount,
      currency: l.currency,
    })),
  );
  const o = salesOrders;
  // Every part of a statement reads the tables as they were when it began: the last branch finds an
  // order placed earlier under the key, never the one the first inserts.
  const [answer] = await query<Record<string, unknown> & { placed: boolean }>(
    db,
    sql`with placed as (
        insert into ${o} ${rowValues(o, order)} on conflict do nothing returning ${orderRow.columns}
      ), lines as (
        insert into ${orderLines} (order_id, "position", sku, name, kind, quantity, unit_amount, currency)
        select placed.id, line."position", line.sku, line.name, line.kind, line.quantity, line.unit_amount,
          line.currency
        from placed, jsonb_to_recordset(${lineRows}::jsonb) as line("position" integer, sku text, name text,
          kind text, quantity integer, unit_amount integer, currency text)
      ), events as (${insertEvents})
      select ${orderRow.columns}, true as placed from placed
      union all
      select ${orderRow.columns}, false from ${o}
        where ${o.customerId} = ${order.customerId} and ${o.idempotencyKey} = ${order.idempotencyKey}`,
  );
  return answer && { order: orderRow.read(answer), placed: answer.placed };
}
