/**
 * The placement's one statement: the order, its lines and its events written
 * together, atomic on its own, so placeOrder needs no transaction.
 */
import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/database.ts";
import { rowSelect } from "../db/rows.ts";
import { type NewEvent, outboxInsert } from "../relay/outbox.ts";
import type { CatalogProduct, Placement } from "./decide.ts";
import { productsUnchanged } from "./known-products.ts";
import { type OrderRow, orderLines, salesOrders } from "./tables.ts";
import { orderRow } from "./transition.ts";

export type PlacementAnswer =
  /** `placed`: by this statement; else the order placed under the key before it began. */
  | { kind: "order"; order: OrderRow; placed: boolean }
  /** A product was no longer as `priced` gave it: nothing written (a repeat is answered all the same). */
  | { kind: "repriced" }
  /** A concurrent placement took the key since: its order is committed by then (the unique index waited for it), and the next statement sees it. */
  | { kind: "taken" };

/**
 * Inserts the order and, only when its key was free and every product in
 * `priced` is still as given, its lines and its events (data-modifying CTEs).
 */
export async function insertPlacement(
  db: Executor,
  order: typeof salesOrders.$inferInsert,
  lines: Placement["lines"],
  events: NewEvent[],
  priced: readonly CatalogProduct[],
): Promise<PlacementAnswer> {
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
  const [answer] = await query<Record<string, unknown> & { priced: boolean; placed: boolean | null }>(
    db,
    sql`with priced as materialized (select ${productsUnchanged(priced)} as ok),
      placed as (
        insert into ${o} ${rowSelect(o, order)} where (select ok from priced)
        on conflict do nothing returning ${orderRow.columns}
      ), lines as (
        insert into ${orderLines} (order_id, "position", sku, name, kind, quantity, unit_amount, currency)
        select placed.id, line."position", line.sku, line.name, line.kind, line.quantity, line.unit_amount,
          line.currency
        from placed, jsonb_to_recordset(${lineRows}::jsonb) as line("position" integer, sku text, name text,
          kind text, quantity integer, unit_amount integer, currency text)
      ), events as (${insertEvents})
      select priced.ok as priced, answer.* from priced left join (
        select ${orderRow.columns}, true as placed from placed
        union all
        select ${orderRow.columns}, false from ${o}
          where ${o.customerId} = ${order.customerId} and ${o.idempotencyKey} = ${order.idempotencyKey}
      ) answer on true`,
  );
  if (answer?.placed === true || answer?.placed === false)
    return { kind: "order", order: orderRow.read(answer), placed: answer.placed };
  return answer?.priced === false ? { kind: "repriced" } : { kind: "taken" };
}
