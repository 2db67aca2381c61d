import { sql } from "drizzle-orm";
import type { Listener } from "../relay/listener.ts";
import type { ModuleDefinition } from "./module.ts";
import { addNote, readModuleRow } from "./module-rows.ts";

import { orderCancelled } from "./transition.ts";

/** A module's listener: its handlers by event type, and its rollback on OrderCancelled. */
export function moduleListener<S extends string>(module: ModuleDefinition<S>): Listener {
  return {
    name: module.name,
    handles: (type) => type === orderCancelled || module.on[type] !== undefined,
    async handle(tx, event) {
      // One handler per (module, order) at a time: a cancel racing with the row's creation sees it, or is seen by it.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${module.name}:${event.orderId}`}))`);
      const ctx = { tx, event, module };
      if (event.type === orderCancelled) {
        const row = await readModuleRow(tx, module, event.orderId, { lock: true });
        if (row) await module.onCancel(ctx);
        else await addNote(tx, module.name, event.orderId, "cancelled");
        return;
      }
      await module.on[event.type]?.(ctx);
    },
  };
}
