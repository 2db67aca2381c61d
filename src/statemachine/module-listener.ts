import type { BatchListener } from "../relay/listener.ts";
import { parseEvent } from "./events.ts";
import type { ModuleDefinition } from "./module.ts";
import { moduleHeard, moduleSkips } from "./module-decide.ts";
import { planModuleBatch } from "./module-plan.ts";
import { applyModulePlan, readKnownOrders } from "./module-rows.ts";

/**
 * A module's listener: reads what the module knows of the batch's orders,
 * lets it decide on each event in stream order, and applies what it decided
 * in bulk: a fixed number of statements per batch, whatever its size.
 */
export function moduleListener<S extends string>(module: ModuleDefinition<S>): BatchListener {
  return {
    name: module.name,
    types: moduleHeard(module),
    skips: (delivery) => {
      try {
        return moduleSkips(module, parseEvent(delivery));
      } catch {
        return false; // handle() dead-letters what it cannot read
      }
    },
    // One handler per (module, order) at a time: a cancel racing with the row's creation sees it, or is
    // seen by it. Taken by the runner with the inbox insert (see ListenerBase.lockKeys).
    lockKeys: (deliveries) => [...new Set(deliveries.map((e) => `${module.name}:${e.orderId}`))],
    async handleBatch(tx, deliveries) {
      const events = deliveries.map(parseEvent);
      const orderIds = [...new Set(events.map((e) => e.orderId))];
      const known = await readKnownOrders(tx, module, orderIds);
      await applyModulePlan(tx, module, planModuleBatch(module, events, known));
    },
  };
}
