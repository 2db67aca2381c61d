// Rewrites the README's state diagrams from the transition tables: `npm run diagram`.
import { readFileSync, writeFileSync } from "node:fs";
import { modules } from "../src/modules/index.ts";
import { replaceDiagrams } from "../src/statemachine/diagram.ts";

const path = new URL("../README.md", import.meta.url);
writeFileSync(path, replaceDiagrams(readFileSync(path, "utf8"), modules));
