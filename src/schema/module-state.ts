import { createContextCache } from "@pothos/core";
import DataLoader from "dataloader";
import type { ModuleDefinition } from "../statemachine/module.ts";
import type { OrderRow } from "../statemachine/tables.ts";
import type { Builder, Context } from "./builder.ts";
import { upperEnum } from "./enums.ts";
import { orderReads } from "./order-reads.ts";

/** A module's row for one order, as the schema sees it. */
export interface ModuleStateRow {
  module: string;
  state: string;
  updatedAt: Date;
  row: Record<string, unknown>;
}

/** Each module contributes its ModuleState type from its definition: nothing here names a module. */
export function addModuleStates(builder: Builder, modules: readonly ModuleDefinition[]) {
  const ModuleStateRef = builder.interfaceRef<ModuleStateRow>("ModuleState").implement({
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

  return { ModuleStateRef };
}

type InvolvedOrder = Pick<OrderRow, "id" | "involvedModules">;

/**
 * The module rows of the orders a request reads, one statement per module
 * table for all of them (Order.modules and Order.completion share it). Not
 * cached: a subscription keeps its context for every event, and rows move.
 */
export const moduleStatesOf = createContextCache(
  (ctx: Context) =>
    new DataLoader<InvolvedOrder, ModuleStateRow[], string>((orders) => loadModuleStates(ctx, orders), {
      cache: false,
    }),
);

async function loadModuleStates(ctx: Context, orders: readonly InvolvedOrder[]): Promise<ModuleStateRow[][]> {
  const byOrder = new Map(orders.map((o) => [o.id, [] as ModuleStateRow[]]));
  const tables = ctx.modules.map(async (module) => {
    const ids = [...new Set(orders.filter((o) => o.involvedModules.includes(module.name)).map((o) => o.id))];
    if (ids.length === 0) return [];
    const rows = await orderReads(ctx.database.db, ctx.modules).moduleRows.get(module.name)!.execute({ ids });
    return rows.map((row) => ({ module: module.name, row: row as Record<string, unknown> }));
  });
  // Module list order within each order, as the modules are declared.
  for (const rows of await Promise.all(tables)) {
    for (const { module, row } of rows) {
      byOrder.get(row.orderId as string)?.push({
        module,
        state: row.state as string,
        updatedAt: row.updatedAt as Date,
        row,
      });
    }
  }
  return orders.map((o) => byOrder.get(o.id) ?? []);
}
