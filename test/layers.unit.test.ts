import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";

// The layers of src/, top first (DESIGN.md "Layout"): a file imports only from its own layer or a lower one.
// Layers on one row sit side by side and do not import each other.
const tiers: string[][] = [
  ["root"], // main.ts, server.ts, config.ts, tokens.ts: the composition root wires everything
  ["gateway"],
  ["schema"],
  ["feed", "modules"],
  ["statemachine"],
  ["relay"],
  ["db"],
  ["errors.ts", "log.ts", "faults.ts"], // leaves every layer may use
];

/** Imports that break the rule on purpose, each with its reason; "from -> to" as paths under src/. */
const allowed = new Map<string, string>([
  // drizzle wants every table in one schema object, and each table lives beside the code that owns it.
  ...["finance", "logistics", "notifier", "subscription", "travelium"].map(
    (m) => [`db/schema.ts -> modules/${m}/table.ts`, "the table registry"] as const,
  ),
  ["db/schema.ts -> relay/tables.ts", "the table registry"],
  ["db/schema.ts -> statemachine/catalog.ts", "the table registry"],
  ["db/schema.ts -> statemachine/tables.ts", "the table registry"],
]);

const src = join(import.meta.dirname, "..", "src");

const root = ["main.ts", "server.ts", "config.ts", "tokens.ts"];

function layerOf(path: string): string {
  const first = path.split("/")[0] ?? path;
  return root.includes(first) ? "root" : first;
}

function tierOf(layer: string): number {
  const tier = tiers.findIndex((row) => row.includes(layer));
  if (tier < 0)
    throw new Error(`src/${layer} is in no layer: add it to the tiers in test/layers.unit.test.ts`);
  return tier;
}

/** Why `from` may not import `to` (both paths under src/), or undefined when it may. */
function layerViolation(from: string, to: string): string | undefined {
  const [fromLayer, toLayer] = [layerOf(from), layerOf(to)];
  if (fromLayer === toLayer) {
    // A module reaches another only through events; modules/*.ts are shared by all of them.
    const [fromModule, toModule] = [from.split("/"), to.split("/")];
    if (
      fromLayer === "modules" &&
      fromModule.length > 2 &&
      toModule.length > 2 &&
      fromModule[1] !== toModule[1]
    )
      return `module ${fromModule[1]} imports module ${toModule[1]}`;
    return undefined;
  }
  const [fromTier, toTier] = [tierOf(fromLayer), tierOf(toLayer)];
  if (toTier < fromTier) return `${fromLayer} imports ${toLayer}, a layer above it`;
  if (toTier === fromTier) return `${fromLayer} imports ${toLayer}, a layer beside it`;
  return undefined;
}

/** A path as the layers name it: under src/, with forward slashes. */
function underSrc(path: string): string {
  return relative(src, path).split("\\").join("/");
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative imports, re-exports and dynamic imports of a file, as paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers = text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g);
  return [...specifiers].map((m) => underSrc(join(dirname(file), m[1] ?? "")));
}

/** Every import of src/ that breaks the rule, "from -> to: why". */
function violations(): string[] {
  return sourceFiles(src).flatMap((file) => {
    const from = underSrc(file);
    return importsOf(file).flatMap((to) => {
      const why = layerViolation(from, to);
      return why ? [`${from} -> ${to}: ${why}`] : [];
    });
  });
}

describe("layers", () => {
  it("tells an upward or sideways import from a downward one", () => {
    expect(layerViolation("statemachine/decide.ts", "modules/catalog/table.ts")).toMatch(/above/);
    expect(layerViolation("statemachine/module.ts", "schema/auth.ts")).toMatch(/above/);
    expect(layerViolation("relay/listener.ts", "statemachine/tables.ts")).toMatch(/above/);
    expect(layerViolation("relay/bus.ts", "modules/index.ts")).toMatch(/above/);
    expect(layerViolation("modules/finance/index.ts", "schema/order.ts")).toMatch(/above/);
    expect(layerViolation("modules/finance/index.ts", "gateway/http.ts")).toMatch(/above/);
    expect(layerViolation("feed/order-feed.ts", "modules/index.ts")).toMatch(/beside/);
    expect(layerViolation("modules/notifier/listener.ts", "modules/finance/index.ts")).toMatch(
      /module notifier/,
    );
    expect(layerViolation("db/database.ts", "log.ts")).toBeUndefined();
    expect(layerViolation("gateway/http.ts", "schema/index.ts")).toBeUndefined();
    expect(layerViolation("schema/builder.ts", "feed/order-feed.ts")).toBeUndefined();
    expect(layerViolation("modules/logistics/index.ts", "modules/progress.ts")).toBeUndefined();
    expect(layerViolation("statemachine/module.ts", "relay/bus.ts")).toBeUndefined();
    expect(layerViolation("server.ts", "gateway/http.ts")).toBeUndefined();
  });

  it("finds every import of src/", () => {
    expect(importsOf(join(src, "db", "schema.ts"))).toContain("relay/tables.ts");
    expect(importsOf(join(src, "statemachine", "decide.ts"))).toContain("statemachine/catalog.ts");
  });

  it("has no import of src/ that runs upward or sideways, except the listed ones", () => {
    const found = violations();
    expect(found.filter((v) => !allowed.has(v.slice(0, v.indexOf(":"))))).toEqual([]);
    // An exception that no longer occurs is struck off the list, so the list stays the truth.
    const stale = [...allowed.keys()].filter((key) => !found.some((v) => v.startsWith(`${key}:`)));
    expect(stale).toEqual([]);
  });
});
