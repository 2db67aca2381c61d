import { eq } from "drizzle-orm";
import type { Executor } from "../db/database.ts";
import type { ModuleDefinition } from "../statemachine/module.ts";
import { builder } from "./builder.ts";
import { upperEnum } from "./enums.ts";

/** A module's row for one order, as the schema sees it. */
export interface ModuleStateRow {
  module: string;
  state: string;
  updatedAt: Date;
  row: Record<string, unknown>;
}

export const ModuleStateRef = builder.interfaceRef<ModuleStateRow>("ModuleState").implement({
  description: "A module's own record of its work on one order (its order_module_state row).",
  fields: (t) => ({
    module: t.exposeString("module", {
      description: "Module name: finance, logistics, travelium, subscription, ...",
    }),
    state: t.exposeString("state", {
      description: "The module's sub-state, lower case, e.g. issued, shipped, reserved.",
    }),
    updatedAt: t.field({ type: "DateTime", resolve: (r) => r.updatedAt }),
  }),
});

/** Each module contributes its ModuleState type from its definition: nothing here names a module. */
export function registerModuleStates(modules: readonly ModuleDefinition[]): void {
  for (const module of modules) {
    const { typeName, stateEnum, stateField, strings = {} } = module.graphql;
    const StateEnum = builder.enumType(stateEnum, { values: upperEnum(module.states) });
    builder.objectRef<ModuleStateRow>(typeName).implement({
      interfaces: [ModuleStateRef],
      isTypeOf: (value) => (value as ModuleStateRow).module === module.name,
      fields: (t) => ({
        module: t.exposeString("module"),
        state: t.exposeString("state"),
        updatedAt: t.field({ type: "DateTime", resolve: (r) => r.updatedAt }),
        [stateField]: t.field({ type: StateEnum, resolve: (r) => r.state as never }),
        ...Object.fromEntries(
          Object.entries(strings).map(([field, column]) => [
            field,
            t.string({ nullable: true, resolve: (r) => (r.row[column] as string | null) ?? null }),
          ]),
        ),
      }),
    });
  }
}

export async function loadModuleStates(
  db: Executor,
  modules: readonly ModuleDefinition[],
  order: { id: string; involvedModules: string[] },
): Promise<ModuleStateRow[]> {
  const rows: ModuleStateRow[] = [];
  for (const module of modules) {
    if (!order.involvedModules.includes(module.name)) continue;
    const [row] = await db.select().from(module.table).where(eq(module.table.orderId, order.id));
    if (row) {
      const r = row as Record<string, unknown>;
      rows.push({ module: module.name, state: r.state as string, updatedAt: r.updatedAt as Date, row: r });
    }
  }
  return rows;
}
