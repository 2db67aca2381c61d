import { type GraphQLSchema, lexicographicSortSchema } from "graphql";
import type { ModuleDefinition } from "../statemachine/module.ts";
import { createBuilder } from "./builder.ts";
import { addDeadLetters } from "./dead-letters.ts";
import { addModuleStates } from "./module-state.ts";
import { addMutations } from "./mutations.ts";
import { addOrders } from "./order.ts";
import { addParkedEvents } from "./parked-events.ts";
import { addPipeline } from "./pipeline.ts";
import { addProducts } from "./product.ts";
import { addReports } from "./reports.ts";
import { addRepublish } from "./republish.ts";
import { addSubscription } from "./subscription.ts";

/**
 * The schema for a module list: each module adds its ModuleState type and its
 * report mutation. Each call builds afresh, so one process may serve several lists.
 */
export function schemaFor(modules: readonly ModuleDefinition[]): GraphQLSchema {
  const builder = createBuilder();
  const products = addProducts(builder);
  const moduleStates = addModuleStates(builder, modules);
  const orders = addOrders(builder, { ...products, ...moduleStates });
  const mutations = addMutations(builder, orders);
  addReports(builder, modules, mutations);
  addSubscription(builder, orders);
  addDeadLetters(builder, orders);
  addParkedEvents(builder);
  addPipeline(builder, orders);
  addRepublish(builder);
  return lexicographicSortSchema(builder.toSchema());
}
