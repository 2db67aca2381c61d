import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { modules } from "../src/modules/index.ts";
import { replaceDiagrams } from "../src/statemachine/diagram.ts";

describe("README.md", () => {
  it("shows the state diagrams of the current transition tables (run `npm run diagram` when this fails)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(replaceDiagrams(readme, modules)).toBe(readme);
  });
});
