import type { Tx } from "../db/database.ts";
import type { Listener } from "../relay/listener.ts";
import { decideProgress, decideVeto } from "./decide.ts";
import { parseModuleRowChanged } from "./events.ts";
import type { ModuleDefinition } from "./module.ts";
import { readModuleRow } from "./module-rows.ts";
import type { OrderStatus } from "./states.ts";
import type { OrderRow } from "./tables.ts";
import { cancelTransition, lockOrder, lockOrders, transitionOrder } from "./transition.ts";

/**
 * The `orders` role: the shared state machine's own listener. It hears every
 * module's row changes and moves the shared order (confirmed → fulfilling →
 * completed, or cancelled on a veto), reading the rows as they are now rather
 * than trusting the order in which the events arrive.
 */
export function ordersListener(modules: readonly ModuleDefinition[]): Listener {
  return {
    name: "orders",
    types: [...new Set(modules.flatMap((m) => Object.values<string>(m.events)))],
    async prepare(tx, events) {
      // The batch's orders locked at once, in id order, so two batches never wait on each other in a circle.
      await lockOrders(tx, [...new Set(events.map((e) => e.orderId))]);
    },
    async handle(tx, delivery) {
      const event = parseModuleRowChanged(delivery);
      const order = await lockOrder(tx, event.orderId);
      if (!order) return;
      const { state } = event.payload;
      const source = modules.find((m) => m.name === event.payload.module);
      const veto = decideVeto(order.status, source, state);
      if (veto && source) {
        await cancelTransition(tx, order, veto, { veto: source.name });
        return;
      }
      await advanceOrder(tx, order, modules);
    },
  };
}

/**
 * Makes the shared-state moves the order's module rows call for, as they are
 * now, on the order the caller has locked. Returns the states it moved to. The
 * orders listener runs it on every module event, the completion sweep on the
 * orders that event did not move.
 */
export async function advanceOrder(
  tx: Tx,
  order: OrderRow,
  modules: readonly ModuleDefinition[],
): Promise<OrderStatus[]> {
  const rows = new Map<string, string>();
  for (const name of order.involvedModules) {
    const module = modules.find((m) => m.name === name);
    const row = module && (await readModuleRow(tx, module, order.id));
    if (row) rows.set(name, row.state);
  }
  const moves: OrderStatus[] = [];
  let current = order;
  for (const to of decideProgress(order.status, order.requiredModules, rows, modules)) {
    const moved = await transitionOrder(tx, current, to);
    if (!moved) break;
    current = moved.order;
    moves.push(to);
  }
  return moves;
}
