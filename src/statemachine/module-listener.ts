import { sql } from "drizzle-orm";
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
    async handleBatch(tx, deliveries) {
      const events = deliveries.map(parseEvent);
      // One handler per (module, order) at a time: a cancel racing with the row's creation sees it, or is seen by it.
      // The batch's locks in one fixed order, so two batches of this module (two processes) never wait on each
      // other in a circle. One array parameter (keys are a module name and a uuid: nothing to quote).
      const orderIds = [...new Set(events.map((e) => e.orderId))];
      const keys = orderIds.map((orderId) => `${module.name}:${orderId}`);
      await tx.execute(
        sql`select pg_advisory_xact_lock(h) from (select distinct hashtext(k) as h from unnest(${`{${keys.join(",")}}`}::text[]) as k order by 1) as locks`,
      );
      const known = await readKnownOrders(tx, module, orderIds);
      await applyModulePlan(tx, module, planModuleBatch(module, events, known));
    },
  };
}
