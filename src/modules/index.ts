import type { ModuleDefinition } from "../statemachine/module.ts";
import { finance } from "./finance/index.ts";
import { logistics } from "./logistics/index.ts";
import { subscription } from "./subscription/index.ts";
import { travelium } from "./travelium/index.ts";

/** Every module of the saga. A new module is a folder and one line here. */
export const modules: readonly ModuleDefinition[] = [finance, logistics, travelium, subscription];
