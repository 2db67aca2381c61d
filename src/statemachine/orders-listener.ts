import { sql } from "drizzle-orm";
import { query, type Tx } from "../db/database.ts";
import type { BatchListener } from "../relay/listener.ts";
import { decideModuleEvents, decideProgress } from "./decide.ts";
import { parseModuleRowChanged } from "./events.ts";
import type { ModuleDefinition } from "./module.ts";
import type { OrderRow } from "./tables.ts";
import { applyOrderMoves, lockOrders } from "./transition.ts";

/**
 * The `orders` role: the shared state machine's own listener. It hears every
 * module's row changes and moves the shared order (confirmed → fulfilling →
 * completed, or cancelled on a veto), reading the rows as they are now rather
 * than trusting the order in which the events arrive.
 */
export function ordersListener(modules: readonly ModuleDefinition[]): BatchListener {
  return {
    name: "orders",
    types: [...new Set(modules.flatMap((m) => Object.values<string>(m.events)))],
    // The rows as they are now decide: the event of the state the row went on to in the same transaction follows.
    skips: (delivery) => delivery.payload.passing === true,
    async handleBatch(tx, deliveries) {
      const events = deliveries.map(parseModuleRowChanged);
      // The batch's orders locked at once, in id order, so two batches never wait on each other in a circle.
      const locked = await lockOrders(tx, [...new Set(events.map((e) => e.orderId))]);
      // Read once for the whole batch: only the modules' own listeners write these rows, and none runs in
      // this transaction, so they are what each event would have read on its turn.
      const rows = await moduleRows(tx, modules, locked);
      const orders = new Map(locked.map((order) => [order.id, order]));
      const moves = decideModuleEvents(
        orders,
        rows,
        events.map((e) => ({ orderId: e.orderId, module: e.payload.module, state: e.payload.state })),
        modules,
      );
      await applyOrderMoves(tx, orders, moves);
    },
  };
}

/**
 * Makes the shared-state moves the order's module rows call for, as they are
 * now, on the order the caller has locked, all in one step. Returns the order
 * as moved, or undefined when it stays where it is. The completion sweep runs
 * it on the orders the orders listener did not move.
 */
export async function advanceOrder(
  tx: Tx,
  order: OrderRow,
  modules: readonly ModuleDefinition[],
): Promise<OrderRow | undefined> {
  const rows = (await moduleRows(tx, modules, [order])).get(order.id) ?? new Map<string, string>();
  const path = decideProgress(order.status, order.requiredModules, rows, modules);
  if (path.length === 0) return undefined;
  const [moved] = await applyOrderMoves(tx, new Map([[order.id, order]]), [
    { orderId: order.id, from: order.status, path },
  ]);
  return moved;
}

/**
 * The orders' rows of the modules each involves, order id → module name →
 * state, in one statement: a select per module table any of them involves.
 */
async function moduleRows(
  tx: Tx,
  modules: readonly ModuleDefinition[],
  orders: readonly Pick<OrderRow, "id" | "involvedModules">[],
): Promise<Map<string, Map<string, string>>> {
  const rows = new Map(orders.map((order) => [order.id, new Map<string, string>()]));
  const involved = modules.filter((m) => orders.some((order) => order.involvedModules.includes(m.name)));
  if (involved.length === 0) return rows;
  const ids = `{${orders.map((order) => order.id).join(",")}}`;
  const selects = involved.map(
    ({ name, table: t }) =>
      sql`select ${name}::text as module, ${t.orderId} as order_id, ${t.state} as state
        from ${t} where ${t.orderId} = any(${ids}::uuid[])`,
  );
  const found = await query<{ module: string; order_id: string; state: string }>(
    tx,
    sql.join(selects, sql` union all `),
  );
  const involves = new Map(orders.map((order) => [order.id, order.involvedModules]));
  for (const row of found)
    if (involves.get(row.order_id)?.includes(row.module)) rows.get(row.order_id)?.set(row.module, row.state);
  return rows;
}
