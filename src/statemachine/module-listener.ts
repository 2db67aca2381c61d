import { sql } from "drizzle-orm";
import type { Listener } from "../relay/listener.ts";
import { parseEvent } from "./events.ts";
import type { ModuleDefinition } from "./module.ts";
import { decideModule, moduleHeard } from "./module-decide.ts";
import { applyModuleActions, readModuleState } from "./module-rows.ts";

/** A module's listener: reads what the module knows of the order, lets it decide, applies what it decided. */
export function moduleListener<S extends string>(module: ModuleDefinition<S>): Listener {
  return {
    name: module.name,
    types: moduleHeard(module),
    async handle(tx, delivery) {
      const event = parseEvent(delivery);
      // One handler per (module, order) at a time: a cancel racing with the row's creation sees it, or is seen by it.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${module.name}:${event.orderId}`}))`);
      const state = await readModuleState(tx, module, event.orderId);
      await applyModuleActions(tx, module, event, decideModule(module, event, state));
    },
  };
}
