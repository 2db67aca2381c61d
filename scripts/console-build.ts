/**
 * Builds the operators' console (console/ → dist/console, served at /console)
 * when the build is missing or older than its sources: `npm start` and the
 * tests run it first, so a fresh clone needs nothing else. `npm run
 * build:console` builds it whatever its age.
 */
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const repo = resolve(import.meta.dirname, "..");
const sources = join(repo, "console");
const built = join(repo, "dist", "console", "index.html");

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

/** Missing, or older than a source file or the installed packages (package-lock.json). */
export function consoleIsStale(): boolean {
  let builtAt: number;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    return true;
  }
  return Math.max(newest(sources), statSync(join(repo, "package-lock.json")).mtimeMs) > builtAt;
}

export async function buildConsole(): Promise<void> {
  const { build } = await import("vite");
  await build({ configFile: join(sources, "vite.config.ts") });
}

/** A vitest global setup: the browser test and the /console route test need the build. */
export async function setup(): Promise<void> {
  if (consoleIsStale()) await buildConsole();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (consoleIsStale()) {
    process.stdout.write("building the console (console/ → dist/console)\n");
    await buildConsole();
  }
}
