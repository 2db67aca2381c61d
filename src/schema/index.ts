import { lexicographicSortSchema } from "graphql";
import { modules } from "../modules/index.ts";
import { builder } from "./builder.ts";
import { registerModuleStates } from "./module-state.ts";
import { registerReports } from "./reports.ts";
import "./product.ts";
import "./order.ts";
import "./mutations.ts";
import "./subscription.ts";

registerModuleStates(modules);
registerReports(modules);

export const schema = lexicographicSortSchema(builder.toSchema());
