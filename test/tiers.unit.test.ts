import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// What a file imports gives its tier away: a unit test reaches no database, bus or process,
// and only an end-to-end test starts processes of its own.
const io = [
  /^node:child_process$/,
  /^node:net$/,
  /^node:http$/,
  /^pg$/,
  /^@electric-sql\/pglite$/,
  /^@nats-io\//,
  /\/support\/(database|service|private-postgres|smtp|saga)\.ts$/,
  /\/src\/(server|db\/database|relay\/jetstream-bus)\.ts$/,
];
const processes = [/^node:child_process$/, /\/support\/private-postgres\.ts$/];

const dir = import.meta.dirname;
const files = readdirSync(dir).filter((name) => name.endsWith(".test.ts"));

function imports(name: string): string[] {
  const text = readFileSync(join(dir, name), "utf8");
  return [...text.matchAll(/\bfrom\s*["']([^"']+)["']/g)].map((m) => m[1] ?? "");
}

/** The files among `names` that import what `patterns` match, each with those imports. */
function importing(names: string[], patterns: RegExp[]): Record<string, string[]> {
  const found = names.map(
    (name) => [name, imports(name).filter((s) => patterns.some((p) => p.test(s)))] as const,
  );
  return Object.fromEntries(found.filter(([, specifiers]) => specifiers.length > 0));
}

describe("test tiers", () => {
  it("gives every test file a tier: .unit, .int or .e2e", () => {
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((name) => !/\.(unit|int|e2e)\.test\.ts$/.test(name))).toEqual([]);
  });

  it("keeps unit tests off the database, the bus, the network and processes", () => {
    const unit = files.filter((name) => name.endsWith(".unit.test.ts"));
    expect(importing(unit, io)).toEqual({});
  });

  it("starts processes only in end-to-end tests", () => {
    const others = files.filter((name) => !name.endsWith(".e2e.test.ts"));
    expect(importing(others, processes)).toEqual({});
  });

  it("keeps the fault suite a tier of its own: test/faults/*.faults.test.ts, run by npm run test:faults and not by npm test", async () => {
    const faults = readdirSync(join(dir, "faults")).filter((name) => name.endsWith(".test.ts"));
    expect(faults.length).toBeGreaterThan(0);
    expect(faults.filter((name) => !name.endsWith(".faults.test.ts"))).toEqual([]);
    expect(files.filter((name) => name.endsWith(".faults.test.ts"))).toEqual([]);
    const { default: main } = await import("../vitest.config.ts");
    const { default: suite } = await import("../vitest.faults.config.ts");
    expect(main.test?.exclude).toContain("test/faults/**");
    expect(suite.test?.include).toEqual(["test/faults/**/*.faults.test.ts"]);
    const scripts = JSON.parse(readFileSync(join(dir, "..", "package.json"), "utf8")).scripts;
    expect(scripts["test:faults"]).toBe("vitest run --config vitest.faults.config.ts");
  });
});
