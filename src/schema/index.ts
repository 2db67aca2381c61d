import { type GraphQLSchema, lexicographicSortSchema } from "graphql";
import type { ModuleDefinition } from "../statemachine/module.ts";
import { builder } from "./builder.ts";
import { registerModuleStates } from "./module-state.ts";
import { registerReports } from "./reports.ts";
import "./product.ts";
import "./order.ts";
import "./mutations.ts";
import "./subscription.ts";
import "./dead-letters.ts";
import "./parked-events.ts";

let built: { modules: readonly ModuleDefinition[]; schema: GraphQLSchema } | undefined;

/**
 * The schema for a module list: each module adds its ModuleState type and its
 * report mutation. Types are registered once per process, so one process
 * serves one module list.
 */
export function schemaFor(modules: readonly ModuleDefinition[]): GraphQLSchema {
  if (built) {
    if (built.modules.map((m) => m.name).join() !== modules.map((m) => m.name).join()) {
      throw new Error("one process serves one module list");
    }
    return built.schema;
  }
  registerModuleStates(modules);
  registerReports(modules);
  built = { modules, schema: lexicographicSortSchema(builder.toSchema()) };
  return built.schema;
}
