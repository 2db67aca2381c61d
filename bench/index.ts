/**
 * `npm run bench`: each benchmark in a process of its own, one after the
 * other (so the memory of one does not weigh on the next, and a stuck one
 * is stopped and still cleans up), then one markdown report on stdout and
 * in bench/results.md.
 *
 *   npm run bench                       every benchmark (not the extras)
 *   npm run bench -- latency fanout     some of them (names below)
 *   npm run bench -- sequential replay  the extras
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { latencyChart } from "./chart.ts";
import { pgSocket, serviceProcesses } from "./service.ts";
import { cleanUp, progress, renderSection, type Section } from "./support.ts";

/** Run by `npm run bench` with no names, in this order. */
const benchmarks: Record<string, () => Promise<{ run: () => Promise<Section> }>> = {
  throughput: () => import("./throughput.ts"),
  latency: () => import("./open-loop.ts"),
  fanout: () => import("./fanout.ts"),
  queries: () => import("./queries.ts"),
  relay: () => import("./relay-drain.ts"),
  mail: () => import("./mail.ts"),
};
/** Run only when named: the hop-by-hop breakdown of sequential orders, and the resumable subscription's replay. */
const extras: Record<string, () => Promise<{ run: () => Promise<Section> }>> = {
  sequential: () => import("./order-latency.ts"),
  replay: () => import("./replay.ts"),
};
const known = { ...benchmarks, ...extras };

/** Each benchmark is stopped (SIGTERM, it cleans up) if it runs longer than this. */
const childTimeoutMs = Number(process.env.BENCH_TIMEOUT_MS ?? 600_000);

async function child(name: string, out: string): Promise<void> {
  const load = known[name];
  if (!load) throw new Error(`unknown benchmark ${name}`);
  const step = progress(name);
  try {
    const section = await (await load()).run();
    // The parent prints every section together once all have run.
    await writeFile(out, JSON.stringify(section));
  } finally {
    await cleanUp();
    step("cleaned up");
  }
}

function runChild(name: string, out: string): Promise<number> {
  return new Promise((resolve) => {
    const started = Date.now();
    const proc = spawn(process.execPath, [...process.execArgv, import.meta.filename, "--child", name, out], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    const timer = setTimeout(() => {
      console.error(`bench: ${name} ran longer than ${childTimeoutMs} ms, stopping it`);
      proc.kill("SIGTERM");
      setTimeout(() => proc.kill("SIGKILL"), 30_000).unref();
    }, childTimeoutMs);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      console.error(`bench: ${name} finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      resolve(code ?? 1);
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") return child(args[1]!, args[2]!);

  const names = args.length > 0 ? args : Object.keys(benchmarks);
  for (const name of names) if (!known[name]) throw new Error(`unknown benchmark ${name}`);
  const loadBefore = os.loadavg()[0]!;
  const dir = await mkdtemp(join(os.tmpdir(), "order-bench-results-"));
  const sections: Section[] = [];
  const failed: string[] = [];
  try {
    for (const name of names) {
      const out = join(dir, `${name}.json`);
      const code = await runChild(name, out);
      if (code !== 0) {
        failed.push(name);
        continue;
      }
      sections.push(JSON.parse(await readFile(out, "utf8")) as Section);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const cpus = os.cpus();
  const header = [
    "# Benchmarks",
    "",
    `- date: ${new Date().toISOString()}`,
    `- node: ${process.version} on ${os.type()} ${os.release()} (${os.arch()})`,
    `- machine: ${cpus.length} × ${cpus[0]?.model.trim() ?? "unknown CPU"}, ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB memory`,
    `- PostgreSQL and NATS JetStream on 127.0.0.1${pgSocket ? ` (the service reaches PostgreSQL over its Unix socket in ${pgSocket}, BENCH_PG_SOCKET)` : ""}. The service runs as its own process (\`node --import tsx src/main.ts\`),`,
    ...(serviceProcesses
      ? [
          `  **The service runs as ${serviceProcesses.length} processes** (BENCH_PROCESSES), with these roles: ${serviceProcesses.map((r) => `\`${r}\``).join("; ")}; its CPU is theirs together.`,
        ]
      : []),
    "  the load generator in the bench process (except the `sequential` and `replay` extras, which run it in-process);",
    "  each benchmark on its own database and NATS prefix, removed at the end.",
    "- Every measurement is printed beside the limit measured in the same run.",
    `- 1-minute load average: ${loadBefore.toFixed(2)} before the run, ${os.loadavg()[0]!.toFixed(2)} after it (other work on the machine shares its ${cpus.length} cores).`,
  ];
  if (failed.length > 0) header.push("", `**Failed: ${failed.join(", ")}** (see the output of the run).`);
  const report = `${[header.join("\n"), ...sections.map(renderSection)].join("\n\n")}\n`;
  console.log(`\n${report}`);
  // A complete run replaces bench/results.md; a partial or failed one leaves the last complete report.
  if (failed.length > 0) {
    console.error("bench: not writing bench/results.md: a benchmark failed");
    process.exitCode = 1;
  } else if (names.length === Object.keys(benchmarks).length) {
    await writeFile(join(import.meta.dirname, "results.md"), report);
  }
  // The chart follows the latest latency run, complete or not.
  const points = sections.flatMap((s) => s.chart ?? []);
  if (points.length > 0 && failed.length === 0) {
    const chart = latencyChart(
      points,
      `Latency against load (${new Date().toISOString().slice(0, 10)}, load average ${loadBefore.toFixed(1)})`,
    );
    await writeFile(join(import.meta.dirname, "latency.svg"), chart);
  }
}

await main();
