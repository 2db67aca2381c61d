import { sql } from "drizzle-orm";
import { query, type Tx } from "../db/database.ts";
import type { BatchListener } from "../relay/listener.ts";
import { decideModuleEvents, decideProgress } from "./decide.ts";
import { parseModuleRowChanged } from "./events.ts";
import type { ModuleDefinition } from "./module.ts";
import { type OrderRow, salesOrders } from "./tables.ts";
import { applyOrderMoves, orderRow, queueOrderMoves } from "./transition.ts";

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
      const { locked, rows } = await lockWithModuleRows(tx, modules, [
        ...new Set(events.map((e) => e.orderId)),
      ]);
      const orders = new Map(locked.map((order) => [order.id, order]));
      const moves = decideModuleEvents(
        orders,
        rows,
        events.map((e) => ({ orderId: e.orderId, module: e.payload.module, state: e.payload.state })),
        modules,
      );
      await queueOrderMoves(tx, orders, moves);
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
 * The batch's orders, locked at once in id order (so two batches never wait
 * on each other in a circle), each with the states of the module rows it
 * involves, in one statement. The module rows are read as the statement's
 * snapshot has them, taken before its lock waits: every event of the batch
 * was published after the commit that wrote its row, so the snapshot holds
 * them all; a module row committed later has an event of its own to come.
 * Only the modules' own listeners write these rows, and none runs in this
 * transaction, so they are what each event would have read on its turn.
 */
async function lockWithModuleRows(
  tx: Tx,
  modules: readonly ModuleDefinition[],
  orderIds: string[],
): Promise<{ locked: OrderRow[]; rows: Map<string, Map<string, string>> }> {
  if (orderIds.length === 0) return { locked: [], rows: new Map() };
  const states = sql.join(
    modules.map(
      ({ name, table: t }) =>
        sql`select ${name}::text as module, ${t.state} as state from ${t} where ${t.orderId} = o.id`,
    ),
    sql` union all `,
  );
  const raw = await query<Record<string, unknown> & { module_states: Record<string, string> | null }>(
    tx,
    sql`select ${orderRow.columns},
        (select jsonb_object_agg(m.module, m.state) from (${states}) as m) as module_states
      from ${salesOrders} o
      where o.id = any(${`{${orderIds.join(",")}}`}::uuid[]) order by o.id for update of o`,
  );
  const locked = raw.map((r) => orderRow.read(r));
  const rows = new Map(
    locked.map((order, i) => {
      const found = Object.entries(raw[i]!.module_states ?? {});
      return [order.id, new Map(found.filter(([module]) => order.involvedModules.includes(module)))];
    }),
  );
  return { locked, rows };
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
