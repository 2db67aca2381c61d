/**
 * Shared pieces of the benchmarks: a fresh database, NATS prefix and data
 * directory per benchmark (removed at the end, also on SIGTERM), the service
 * started in-process, a small GraphQL client over HTTP and graphql-ws, and
 * the statistics and table formatting.
 *
 * GraphQL documents here are plain strings: codegen scans bench/ for tagged
 * documents, and these must not become part of test/generated.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type Client, createClient } from "graphql-ws";
import pg from "pg";
import WebSocket from "ws";
import { createTestDatabase, natsUrl, testPrefix } from "../test/support/database.ts";
import { startTestService, type TestService } from "../test/support/service.ts";

export { natsUrl };
export const now = () => performance.now();
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One benchmark's section of the report. */
export interface Section {
  title: string;
  columns: string[];
  rows: string[][];
  notes: string[];
  /** Further tables of the same section (e.g. memory). */
  extra?: { columns: string[]; rows: string[][] }[];
  /** Figures for the chart (bench/latency.svg): latency percentiles per offered load. */
  chart?: LatencyPoint[];
}

export interface LatencyPoint {
  series: string;
  /** Orders per second offered. */
  rate: number;
  /** null: beyond the wait (orders not completed in it). */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/** Progress on stderr, with the time since the previous step, so a slow phase shows in the run's output. */
export function progress(benchmark: string) {
  let last = now();
  return (step: string) => {
    const t = now();
    console.error(`bench: ${benchmark}: ${step} (${((t - last) / 1000).toFixed(2)} s)`);
    last = t;
  };
}

// ---------------------------------------------------------------- cleanup

const cleanups: { what: string; step: () => Promise<void> }[] = [];
let cleaning: Promise<void> | undefined;

/** Runs every registered cleanup, newest first; each is bounded so one stuck step cannot hang the rest. May run again for what is registered later. */
export function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { what, step } = cleanups.pop()!;
      const started = now();
      await within(what, 15_000, step()).catch((err) => console.error(`bench: cleanup: ${what}:`, err));
      const took = now() - started;
      if (took > 1000) console.error(`bench: cleanup: ${what} took ${(took / 1000).toFixed(1)} s`);
    }
    cleaning = undefined;
  })();
  return cleaning;
}

/** Registers a cleanup step (run newest first by cleanUp()). */
export function onCleanUp(what: string, step: () => Promise<void>): void {
  cleanups.push({ what, step });
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, cleaning up`);
    void cleanUp().finally(() => process.exit(1));
  });
}

// ---------------------------------------------------------------- environment

export interface BenchEnv {
  databaseUrl: string;
  databaseName: string;
  prefix: string;
  dataDir: string;
  /** A pool of the benchmark's own (not the service's) on the benchmark database. */
  pool: pg.Pool;
  nc: NatsConnection;
  /** Streams to delete at the end besides `<prefix>_events`. */
  extraStreams: string[];
}

/** A fresh database, NATS prefix and data directory, all removed by cleanUp(). */
export async function benchEnv(): Promise<BenchEnv> {
  const database = await createTestDatabase();
  cleanups.push({ what: "drop the database", step: () => database.drop() });
  const prefix = testPrefix();
  const dataDir = await mkdtemp(join(tmpdir(), "order-bench-"));
  cleanups.push({
    what: "remove the data directory",
    step: () => rm(dataDir, { recursive: true, force: true }),
  });
  const nc = await connect({ servers: natsUrl, name: `bench:${prefix}` });
  const env: BenchEnv = {
    databaseUrl: database.url,
    databaseName: database.name,
    prefix,
    dataDir,
    pool: new pg.Pool({ connectionString: database.url, max: 4 }),
    nc,
    extraStreams: [],
  };
  cleanups.push({
    what: "delete the streams",
    step: async () => {
      const jsm = await jetstreamManager(nc);
      for (const stream of [`${prefix}_events`, ...env.extraStreams])
        await jsm.streams.delete(stream).catch(() => {});
      await nc.close();
    },
  });
  cleanups.push({ what: "close the pool", step: () => env.pool.end() });
  return env;
}

/**
 * The service in-process with startService, on the benchmark's database and prefix; stopped by cleanUp() too.
 * Roles: "all" (as `npm start` runs) unless BENCH_ROLES says otherwise.
 */
export async function startBenchService(
  env: BenchEnv,
  roles = process.env.BENCH_ROLES ?? "all",
): Promise<TestService & { url: string; roles: string }> {
  const app = await startTestService({
    databaseUrl: env.databaseUrl,
    natsPrefix: env.prefix,
    roles,
    env: { DATA_DIR: env.dataDir, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "silent" },
  });
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= app.stop();
    return stopped;
  };
  cleanups.push({ what: "stop the service", step: stop });
  return { ...app, url: app.url ?? "", roles, stop };
}

/** Polls until `check` is truthy; throws after `timeoutMs` so a benchmark never hangs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | false | undefined> | T | false | undefined,
  { timeoutMs = 60_000, intervalMs = 20 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Rejects after `ms`, naming what it waited for. */
export function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- GraphQL

export const placeOrderDoc = `
  mutation BenchPlaceOrder($input: PlaceOrderInput!) {
    placeOrder(input: $input) { eventId order { id status } }
  }`;

export const confirmPaymentDoc = `
  mutation BenchConfirmPayment($input: ConfirmPaymentInput!) {
    confirmPayment(input: $input) { eventId order { id status } }
  }`;

export const stateChangesDoc = `
  subscription BenchStateChanges($after: ID) {
    orderStateChanged(after: $after) { eventId orderId from to }
  }`;

export const stateChangesWithOrderDoc = `
  subscription BenchStateChangesWithOrder($after: ID) {
    orderStateChanged(after: $after) { eventId orderId from to order { id status } }
  }`;

/**
 * Keep-alive connections for the load generator's requests. node:http, not
 * fetch: the generator shares the machine's two cores with the service, and
 * fetch costs it several times the CPU per request.
 */
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 256 });

export async function post<T>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token: string,
): Promise<T> {
  const payload = JSON.stringify({ query, variables });
  const text = await new Promise<string>((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: "POST",
        agent: keepAlive,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          authorization: `Bearer ${token}`,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(payload);
  });
  const body = JSON.parse(text) as { data?: T; errors?: unknown[] };
  if (body.errors?.length || !body.data) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

export const ebookPrice = 1299;

/** Places one EBOOK-1 order (only Finance involved) and confirms its payment, as the storefront and PSP would. */
export function orderClient(url: string, tokens: { customer: string; payments: string }) {
  let keys = 0;
  const run = `${Date.now()}`;
  return {
    async place(): Promise<string> {
      const data = await post<{ placeOrder: { order: { id: string } } }>(
        url,
        placeOrderDoc,
        {
          input: {
            lines: [{ sku: "EBOOK-1", quantity: 1 }],
            contactEmail: "bench@example.com",
            idempotencyKey: `bench-${run}-${++keys}`,
          },
        },
        tokens.customer,
      );
      return data.placeOrder.order.id;
    },
    async confirm(orderId: string): Promise<void> {
      await post(
        url,
        confirmPaymentDoc,
        { input: { orderId, paymentReference: `psp-${orderId}`, amount: ebookPrice, currency: "EUR" } },
        tokens.payments,
      );
    },
  };
}

export interface StateChange {
  eventId: string;
  orderId: string;
  from: string | null;
  to: string;
}

/** A graphql-ws subscription; `onChange` gets each change, `failure` the first error. */
export function subscribe(
  url: string,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  onChange: (change: StateChange) => void,
): { client: Client; failure: () => unknown; close: () => Promise<void> } {
  let failure: unknown;
  const client = createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  const unsubscribe = client.subscribe(
    { query, variables },
    {
      next: ({ data, errors }) => {
        if (errors) failure ??= errors;
        else if (data) onChange((data as { orderStateChanged: StateChange }).orderStateChanged);
      },
      error: (error) => {
        failure ??= error;
      },
      complete: () => {},
    },
  );
  return {
    client,
    failure: () => failure,
    close: async () => {
      unsubscribe();
      await client.dispose();
    },
  };
}

// ---------------------------------------------------------------- statistics and formatting

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summary(samples: number[]) {
  return {
    p50: percentile(samples, 50),
    p95: percentile(samples, 95),
    p99: percentile(samples, 99),
    max: Math.max(...samples),
    n: samples.length,
  };
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value < 10
    ? `${value.toFixed(2)} ms`
    : value < 100
      ? `${value.toFixed(1)} ms`
      : `${Math.round(value)} ms`;
}

export function seconds(valueMs: number): string {
  return `${(valueMs / 1000).toFixed(2)} s`;
}

export function rate(count: number, elapsedMs: number, unit: string): string {
  return `${Math.round(count / (elapsedMs / 1000)).toLocaleString("en-US")} ${unit}/s`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function int(n: number): string {
  return n.toLocaleString("en-US");
}

export function markdownTable(columns: string[], rows: string[][]): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  return [
    `| ${columns.map(cell).join(" | ")} |`,
    `| ${columns.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ].join("\n");
}

export function renderSection(section: Section): string {
  return [
    `## ${section.title}`,
    "",
    markdownTable(section.columns, section.rows),
    ...(section.extra ?? []).flatMap((t) => ["", markdownTable(t.columns, t.rows)]),
    ...(section.notes.length > 0 ? ["", ...section.notes.map((n) => `- ${n}`)] : []),
  ].join("\n");
}

/** Memory of this process (service and load generator together), sampled every `everyMs`. */
export function memorySampler(everyMs = 50) {
  let peakRss = 0;
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { peakRss, peakHeap };
    },
  };
}

/** A full collection when the process runs with --expose-gc (the bench script passes it). */
export async function settleMemory(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  await sleep(200);
  gc?.();
  await sleep(50);
  gc?.();
  return process.memoryUsage();
}

// ---------------------------------------------------------------- CPU

const clockTicks = 100; // USER_HZ on Linux

/** CPU seconds used so far by the local processes named `postgres` and `nats-server` (Linux /proc; else undefined). */
function serverCpu(): { postgres: number; nats: number } | undefined {
  try {
    const totals = { postgres: 0, nats: 0 };
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue; // ended meanwhile
      }
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const key = comm === "postgres" ? "postgres" : comm === "nats-server" ? "nats" : undefined;
      if (!key) continue;
      totals[key] += statSeconds(stat);
    }
    return totals;
  } catch {
    return undefined;
  }
}

/** utime + stime of a /proc stat line, in seconds. */
function statSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/**
 * CPU seconds of the processes so far, all their threads and their main
 * threads alone (the event loops: the other threads are V8's compiler and
 * garbage collector, libuv's pool, the mail rendering thread); undefined
 * once one has exited.
 */
function processCpu(pids: number[]): { all: number; main: number } | undefined {
  const seconds = { all: 0, main: 0 };
  for (const pid of pids) {
    try {
      seconds.all += statSeconds(readFileSync(`/proc/${pid}/stat`, "utf8"));
      seconds.main += statSeconds(readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8"));
    } catch {
      return undefined;
    }
  }
  return seconds;
}

export interface CpuReport {
  /** This process (the load generator, and the service when it runs in-process), in % of one core. */
  process: number;
  /** Event-loop utilization of this process, 0..1. */
  eventLoop: number;
  /** The service's own process, when it runs as one. */
  service: number | undefined;
  /** Of which its main thread, the event loop (the rest: V8's compiler and GC, libuv's pool, the rendering thread). */
  serviceMain: number | undefined;
  postgres: number | undefined;
  nats: number | undefined;
}

/** CPU use over an interval: this process, its event loop, the service's process, the PostgreSQL and NATS servers. */
/** `service`: the service's process, or its processes when its roles are split (BENCH_PROCESSES). */
export function cpuMeter(service?: number | number[]) {
  const servicePids = service === undefined ? undefined : [service].flat();
  const wall0 = now();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const servers0 = serverCpu();
  const service0 = servicePids === undefined ? undefined : processCpu(servicePids);
  return {
    stop(): CpuReport {
      const wall = (now() - wall0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0);
      const servers = serverCpu();
      const service1 = servicePids === undefined ? undefined : processCpu(servicePids);
      const pct = (seconds: number) => (100 * seconds) / wall;
      return {
        process: pct((cpu.user + cpu.system) / 1e6),
        eventLoop: elu.utilization,
        service: service0 && service1 ? pct(service1.all - service0.all) : undefined,
        serviceMain: service0 && service1 ? pct(service1.main - service0.main) : undefined,
        postgres: servers && servers0 ? pct(servers.postgres - servers0.postgres) : undefined,
        nats: servers && servers0 ? pct(servers.nats - servers0.nats) : undefined,
      };
    },
  };
}

export function cpuText(report: CpuReport): string {
  // A server's figure sums its live processes: backends that ended during the interval take their CPU with them.
  const pct = (v: number | undefined) => (v === undefined || v < 0 ? "–" : `${Math.round(v)}%`);
  const service =
    report.service === undefined
      ? ""
      : `service ${pct(report.service)} (its event loop's thread ${pct(report.serviceMain)}, its other threads ${pct(
          report.serviceMain === undefined ? undefined : report.service - report.serviceMain,
        )}), `;
  const bench = report.service === undefined ? "node" : "bench (load)";
  return `${service}${bench} ${pct(report.process)} (event loop ${Math.round(report.eventLoop * 100)}% busy), postgres ${pct(report.postgres)}, nats-server ${pct(report.nats)}`;
}

// ---------------------------------------------------------------- SQL statements

let statements = 0;
let transactions = 0;
let counting = false;

/**
 * Counts the SQL statements (and BEGINs) that every pg client of this
 * process sends: the service's pools and listeners, and the benchmark's own.
 */
export function countStatements(): () => { statements: number; transactions: number } {
  if (!counting) {
    counting = true;
    const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
    (pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
      const first = args[0];
      const text = typeof first === "string" ? first : (first as { text?: unknown } | undefined)?.text;
      statements++;
      if (typeof text === "string" && /^\s*begin\b/i.test(text)) transactions++;
      return query.apply(this, args);
    };
  }
  return () => ({ statements, transactions });
}

/** What a graphql-ws client reported: an Error, a GraphQL error list, or a socket's close or error event. */
export function subscriptionFailure(failure: unknown): string {
  if (failure instanceof Error) return failure.message;
  const { type, code, reason, message } = failure as {
    type?: string;
    code?: number;
    reason?: string;
    message?: string;
  };
  if (type || code !== undefined) return `${type ?? "event"} ${code ?? ""} ${reason ?? message ?? ""}`.trim();
  return JSON.stringify(failure);
}
