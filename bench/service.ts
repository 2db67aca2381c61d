/**
 * The service as its own OS process (`node --import tsx src/main.ts`, as
 * `npm start` runs it), so the load generator does not share its event loop:
 * the service's event loop is the bottleneck being measured. The bench talks
 * to it only through its public surfaces: GraphQL over HTTP and graphql-ws,
 * its probes, its environment, the database. A preloaded counter
 * (sql-counter.ts) reports its SQL statements over IPC; its RSS is read from
 * /proc.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { type BenchEnv, natsUrl, onCleanUp, sleep, within } from "./support.ts";

/** The secret of test/support/service.ts, so its `tokens` are valid here too. */
const jwtSecret = "test-secret-not-for-production";
const root = join(import.meta.dirname, "..");

/** Limits meant for storefronts, lifted: the bench is one caller placing thousands of orders. */
const unlimited = {
  RATE_LIMIT_PER_MINUTE: "100000000",
  MAX_SUBSCRIPTIONS_PER_CALLER: "1000000",
  MAX_CONNECTIONS_PER_CALLER: "1000000",
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface ServiceProcess {
  url: string;
  /** The process serving /graphql. */
  pid: number;
  /** Every process of the service (one, unless BENCH_PROCESSES splits its roles). */
  pids: number[];
  roles: string;
  dataDir: string;
  /** SQL statements and BEGINs the process has sent so far. */
  sql(): Promise<{ statements: number; transactions: number }>;
  /** Resident set size now, in bytes; NaN once it has exited. */
  rss(): number;
  stop(): Promise<void>;
}

/**
 * BENCH_PG_SOCKET=<dir> (e.g. /var/run/postgresql): the service reaches PostgreSQL over its Unix socket
 * in that directory instead of TCP on 127.0.0.1, as a service on the database's own host may. The
 * figures of such a run say so in their heading.
 */
export const pgSocket = process.env.BENCH_PG_SOCKET;

function serviceDatabaseUrl(url: string): string {
  if (!pgSocket) return url;
  // pg reads `host` from the query over the URL's host.
  const socketUrl = new URL(url);
  socketUrl.searchParams.set("host", pgSocket);
  return socketUrl.toString();
}

/**
 * BENCH_PROCESSES="gateway;relay,orders,finance,logistics,travelium,subscription,notifier": the service
 * as several processes, one per `;`-separated role list, as an operator may run it to use more than one
 * core (the first list must hold the gateway). Unset: one process with every role (ROLES=all).
 */
export const serviceProcesses = process.env.BENCH_PROCESSES?.split(";").map((roles) => roles.trim());

/** Starts the service on the benchmark's database and NATS prefix; waits until /readyz answers 200. */
export async function spawnService(
  env: BenchEnv,
  options: { roles?: string; env?: Record<string, string> } = {},
): Promise<ServiceProcess> {
  if (serviceProcesses && options.roles === undefined) return spawnSplit(env, serviceProcesses, options);
  return spawnOne(env, options);
}

/** The service as one process per role list; the first serves /graphql. */
async function spawnSplit(
  env: BenchEnv,
  groups: string[],
  options: { env?: Record<string, string> },
): Promise<ServiceProcess> {
  if (!groups[0]?.split(",").includes("gateway"))
    throw new Error(`BENCH_PROCESSES: the first role list must hold the gateway (${groups.join(";")})`);
  const processes: ServiceProcess[] = [];
  for (const roles of groups) processes.push(await spawnOne(env, { ...options, roles }));
  const [gateway] = processes as [ServiceProcess];
  return {
    ...gateway,
    pids: processes.map((p) => p.pid),
    roles: groups.join(" | "),
    sql: async () => {
      const counts = await Promise.all(processes.map((p) => p.sql()));
      return {
        statements: counts.reduce((n, c) => n + c.statements, 0),
        transactions: counts.reduce((n, c) => n + c.transactions, 0),
      };
    },
    stop: async () => {
      await Promise.all(processes.map((p) => p.stop()));
    },
  };
}

async function spawnOne(
  env: BenchEnv,
  options: { roles?: string; env?: Record<string, string> },
): Promise<ServiceProcess> {
  // Once more if it exits while starting: the free port may have been taken between the probe and the bind.
  return startOnce(env, options).catch((error: unknown) => {
    console.error(`${error instanceof Error ? error.message : error}; trying once more`);
    return startOnce(env, options);
  });
}

async function startOnce(
  env: BenchEnv,
  options: { roles?: string; env?: Record<string, string> },
): Promise<ServiceProcess> {
  const roles = options.roles ?? process.env.BENCH_ROLES ?? "all";
  const port = await freePort();
  const dataDir = await mkdtemp(join(env.dataDir, "service-"));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      // BENCH_CPU_PROF=<dir>: the service writes a V8 CPU profile there when it stops (node --cpu-prof).
      ...(process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
      // BENCH_NODE_ARGS: more of node's flags for the service, space-separated (say `--trace-deopt`).
      ...(process.env.BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
      "--import",
      "tsx",
      "--import",
      "./bench/sql-counter.ts",
      "src/main.ts",
    ],
    {
      cwd: root,
      // Its log (warnings and worse by default) goes to the bench's stderr, beside the progress lines.
      stdio: ["ignore", "pipe", "inherit", "ipc"],
      env: {
        ...process.env,
        PORT: String(port),
        DATABASE_URL: serviceDatabaseUrl(env.databaseUrl),
        NATS_URL: natsUrl,
        NATS_PREFIX: env.prefix,
        JWT_SECRET: jwtSecret,
        DATA_DIR: dataDir,
        ROLES: roles,
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn",
        ...unlimited,
        ...options.env,
      },
    },
  );
  child.stdout?.pipe(process.stderr);
  let exited = false;
  let exitCode: number | string | null = null;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = true;
      exitCode = code ?? signal;
      resolve();
    }),
  );
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (exited) return;
      child.kill("SIGTERM");
      await within("the service to stop", 25_000, exit).catch(async () => {
        child.kill("SIGKILL");
        await exit;
      });
    })();
    return stopping;
  };
  onCleanUp("stop the service process", stop);

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited)
      throw new Error(
        `bench: the service (ROLES=${roles}) exited (${exitCode}) while starting; its log is above`,
      );
    const ready = await fetch(`${base}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) throw new Error("bench: the service did not become ready within 60 s");
    await sleep(100);
  }

  return {
    url: `${base}/graphql`,
    pid: child.pid!,
    pids: [child.pid!],
    roles,
    dataDir,
    sql: () =>
      within(
        "the service's SQL count",
        5_000,
        new Promise((resolve) => {
          child.once("message", (m) => resolve(m as { statements: number; transactions: number }));
          child.send("sql");
        }),
      ),
    rss: () => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        const kb = /^VmRSS:\s+(\d+)/m.exec(status);
        return kb ? Number(kb[1]) * 1024 : Number.NaN;
      } catch {
        return Number.NaN; // it has exited
      }
    },
    stop,
  };
}

/**
 * How long to wait before reading pg_stat_database so that it holds every
 * commit made before the wait. PostgreSQL 15 keeps a backend's counts until it
 * goes idle at least a second after its last report, or else until it has been
 * idle for 10 s: a connection idle since its last statements reports them only
 * then (measured: 1,000 commits on one connection showed 2 after 1.5 s, 1,002
 * after 12.5 s). A 1.5 s wait let the warm-up's commits land in the window.
 */
export const statsFlushMs = 11_000;

/** The bench database's committed transactions so far (pg_stat_database; every client of the database counts). */
export async function commits(env: BenchEnv): Promise<number> {
  // The statistics are per backend and flushed at most every second or so: force the view fresh.
  await env.pool.query("select pg_stat_clear_snapshot()");
  const { rows } = await env.pool.query<{ n: string }>(
    "select xact_commit as n from pg_stat_database where datname = $1",
    [env.databaseName],
  );
  return Number(rows[0]!.n);
}
