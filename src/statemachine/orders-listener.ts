import { sql } from "drizzle-orm";
import { query, type Tx } from "../db/database.ts";
import type { BatchListener } from "../relay/listener.ts";
import { decideProgress, decideVeto } from "./decide.ts";
import { parseModuleRowChanged } from "./events.ts";
import type { ModuleDefinition } from "./module.ts";
import type { OrderRow } from "./tables.ts";
import { cancelTransition, lockOrders, transitionOrderThrough } from "./transition.ts";

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
      // The batch's orders locked at once, in id order, so two batches never wait on each other in a circle;
      // each as it was last written, so the next event of the same order starts from there.
      const orders = new Map(
        (await lockOrders(tx, [...new Set(events.map((e) => e.orderId))])).map((row) => [row.id, row]),
      );
      for (const event of events) {
        const order = orders.get(event.orderId);
        if (!order) continue;
        const { state } = event.payload;
        const source = modules.find((m) => m.name === event.payload.module);
        const veto = decideVeto(order.status, source, state);
        const moved =
          veto && source
            ? (await cancelTransition(tx, order, veto, { veto: source.name }))?.order
            : await advanceOrder(tx, order, modules);
        if (moved) orders.set(moved.id, moved);
      }
    },
  };
}

/**
 * Makes the shared-state moves the order's module rows call for, as they are
 * now, on the order the caller has locked, all in one step. Returns the order
 * as moved, or undefined when it stays where it is. The orders listener runs
 * it on every module event, the completion sweep on the orders that event
 * did not move.
 */
export async function advanceOrder(
  tx: Tx,
  order: OrderRow,
  modules: readonly ModuleDefinition[],
): Promise<OrderRow | undefined> {
  const involved = modules.filter((m) => order.involvedModules.includes(m.name));
  const rows = await moduleStates(tx, involved, order.id);
  return transitionOrderThrough(
    tx,
    order,
    decideProgress(order.status, order.requiredModules, rows, modules),
  );
}

/** The order's rows of these modules, module name → state, in one statement. */
async function moduleStates(
  tx: Tx,
  modules: readonly ModuleDefinition[],
  orderId: string,
): Promise<Map<string, string>> {
  if (modules.length === 0) return new Map();
  const selects = modules.map(
    ({ name, table: t }) =>
      sql`select ${name}::text as module, ${t.state} as state from ${t} where ${t.orderId} = ${orderId}`,
  );
  const found = await query<{ module: string; state: string }>(tx, sql.join(selects, sql` union all `));
  return new Map(found.map((row) => [row.module, row.state]));
}
