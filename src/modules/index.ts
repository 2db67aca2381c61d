import type { ModuleDefinition } from "../statemachine/module.ts";
import { finance } from "./finance/index.ts";

/** Every module of the saga. A new module is a folder and one line here. */
export const modules: readonly ModuleDefinition[] = [finance];
