import { sql } from "drizzle-orm";
import {
  check,
  integer,
  type PgColumnBuilderBase,
  pgTable,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";

/**
 * A module's order_module_state table: one row per order the module works on,
 * with the module's sub-state, plus whatever columns the module needs.
 */
export function moduleStateTable<S extends string, C extends Record<string, PgColumnBuilderBase>>(
  name: string,
  states: readonly S[],
  columns: C,
) {
  return pgTable(
    name,
    {
      orderId: uuid("order_id").primaryKey(),
      state: text("state").$type<S>().notNull(),
      /** Bumped on every change, so readers can tell a newer row from an older one. */
      version: integer("version").notNull().default(1),
      createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
      updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
      ...columns,
    },
    (t) => [check(`${name}_state`, sql`${t.state} in (${sql.raw(states.map((s) => `'${s}'`).join(", "))})`)],
  );
}
