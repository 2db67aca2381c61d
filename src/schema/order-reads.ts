import { asc, eq, type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { Db } from "../db/database.ts";
import { orderEvents } from "../relay/tables.ts";
import type { ModuleDefinition } from "../statemachine/module.ts";
import { orderLines, salesOrders } from "../statemachine/tables.ts";

/**
 * The reads every `order(id)` and every page of `orders` makes, prepared once
 * per database: drizzle builds their SQL once instead of per request, and
 * PostgreSQL parses and plans each once per connection (named statements).
 */
function prepare(db: Db, modules: readonly ModuleDefinition[]) {
  return {
    order: db
      .select()
      .from(salesOrders)
      .where(eq(salesOrders.id, sql.placeholder("id")))
      .prepare("order_by_id"),
    lines: db
      .select()
      .from(orderLines)
      .where(anyOf(orderLines.orderId))
      .orderBy(asc(orderLines.position))
      .prepare("order_lines_of_orders"),
    // The timeline's columns only: the payloads (jsonb, the bulk of a row) are not part of it,
    // but for a listener's events, whose actor it names (statemachine/actors.ts).
    events: db
      .select({
        id: orderEvents.id,
        orderId: orderEvents.orderId,
        type: orderEvents.type,
        occurredAt: orderEvents.occurredAt,
        actor: orderEvents.actor,
        payload: sql<Record<
          string,
          unknown
        > | null>`case when ${orderEvents.actor} is null then ${orderEvents.payload} end`,
      })
      .from(orderEvents)
      .where(anyOf(orderEvents.orderId))
      .orderBy(asc(orderEvents.seq))
      .prepare("order_events_of_orders"),
    moduleRows: new Map(
      modules.map((module) => [
        module.name,
        db
          .select()
          .from(module.table)
          .where(anyOf(module.table.orderId))
          .prepare(`module_rows_${module.name}`),
      ]),
    ),
  };
}

/** `column = any($ids)`: one statement text whatever the number of ids. */
function anyOf(column: AnyPgColumn): SQL {
  return sql`${column} = any(${sql.placeholder("ids")})`;
}

type OrderReads = ReturnType<typeof prepare>;
/** An entry of an order's timeline. */
export type OrderEventRow = Awaited<ReturnType<OrderReads["events"]["execute"]>>[number];
const prepared = new WeakMap<Db, Map<readonly ModuleDefinition[], OrderReads>>();

export function orderReads(db: Db, modules: readonly ModuleDefinition[]): OrderReads {
  const byModules = prepared.get(db) ?? new Map<readonly ModuleDefinition[], OrderReads>();
  prepared.set(db, byModules);
  const reads = byModules.get(modules) ?? prepare(db, modules);
  byModules.set(modules, reads);
  return reads;
}
