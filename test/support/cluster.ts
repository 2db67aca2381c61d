import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "./wait.ts";

const root = join(import.meta.dirname, "..", "..");

/** `npm start` with some ROLES, as an operator runs it: an OS process that can be killed, paused or stopped. */
export class RoleProcess {
  readonly child: ChildProcess;
  /** Its exit: the code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output = "";

  constructor(
    readonly name: string,
    readonly roles: string,
    env: Record<string, string>,
  ) {
    const url = new URL(env.DATABASE_URL!);
    // Its sessions are named after it, so a test can find (and terminate) them.
    url.searchParams.set("application_name", name);
    this.child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: {
        ...process.env,
        ...env,
        DATABASE_URL: url.toString(),
        ROLES: roles,
        PORT: env.PORT ?? "0",
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString();
      // Only the tail matters when a test fails; a long run must not keep every log line.
      if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Its base URL (http://127.0.0.1:port) once it serves: GraphQL for a gateway, the probes for the others. */
  started(): Promise<string> {
    return eventually(
      () => {
        if (!this.running) throw new Error(`${this.name} exited: ${this.output.slice(-3000)}`);
        const match = /"msg":"(?:GraphQL|probes and metrics) on http:\/\/localhost:(\d+)\//.exec(this.output);
        return match ? `http://127.0.0.1:${match[1]}` : undefined;
      },
      // Several TypeScript processes starting at once on two cores: give them time.
      { what: `${this.name} to start`, timeoutMs: 90_000, intervalMs: 100 },
    );
  }

  async kill(signal: NodeJS.Signals = "SIGKILL") {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }
}

export interface ClusterOptions {
  databaseUrl: string;
  natsUrl: string;
  prefix: string;
  smtpUrl: string;
  /** Every process's environment beside the defaults below. */
  env?: Record<string, string>;
}

/**
 * The roles split as an operator would across OS processes on one PostgreSQL
 * and one NATS: two gateways, a relay, the workers (the orders aggregate and
 * the four modules) and the notifier. Each can be killed and started again,
 * with an environment of its own (a fault to inject).
 */
export class Cluster {
  readonly processes = new Map<string, RoleProcess>();
  /** Base URLs of the two gateways once started. */
  gateways: string[] = [];
  private readonly env: Record<string, string>;
  readonly prefix: string;

  static readonly roles: Record<string, string> = {
    gateway1: "gateway",
    gateway2: "gateway",
    relay: "relay",
    workers: "orders,finance,logistics,travelium,subscription",
    notifier: "notifier",
  };

  constructor(options: ClusterOptions) {
    this.prefix = options.prefix;
    this.env = {
      DATABASE_URL: options.databaseUrl,
      NATS_URL: options.natsUrl,
      NATS_PREFIX: options.prefix,
      SMTP_URL: options.smtpUrl,
      MAIL_FROM: "orders@shop.test",
      JWT_SECRET: "test-secret-not-for-production",
      DATA_DIR: mkdtempSync(join(tmpdir(), "cluster-")),
      // The load comes from two test customers: the per-caller limits are for the public, not for this.
      RATE_LIMIT_PER_MINUTE: "1000000",
      MAX_SUBSCRIPTIONS_PER_CALLER: "100",
      NOTIFIER_RETRY_MS: "200",
      ...options.env,
    };
  }

  async start(): Promise<void> {
    // One first, so the migrations run once before the others start (they would queue on the lock anyway).
    const first = this.spawn("gateway1");
    await first.started();
    const rest = ["gateway2", "relay", "workers", "notifier"].map((name) => this.spawn(name));
    await Promise.all(rest.map((p) => p.started()));
    this.gateways = await Promise.all(["gateway1", "gateway2"].map((n) => this.get(n).started()));
  }

  get(name: string): RoleProcess {
    const process = this.processes.get(name);
    if (!process) throw new Error(`no process ${name}`);
    return process;
  }

  /** Starts (or starts again) one of the roles above, with extra environment. */
  spawn(name: string, env: Record<string, string> = {}): RoleProcess {
    const old = this.processes.get(name);
    if (old?.running) throw new Error(`${name} still runs`);
    const process = new RoleProcess(name, Cluster.roles[name]!, { ...this.env, ...env });
    this.processes.set(name, process);
    return process;
  }

  /** Stops a process cleanly (SIGTERM) and starts it again with extra environment (a fault to inject). */
  async replace(name: string, env: Record<string, string> = {}): Promise<RoleProcess> {
    const old = this.processes.get(name);
    if (old?.running) {
      old.child.kill("SIGTERM");
      await old.exited;
    }
    const process = this.spawn(name, env);
    await process.started();
    return process;
  }

  /** Starts a process again after it died, without the fault it was given. */
  async restart(name: string, env: Record<string, string> = {}): Promise<RoleProcess> {
    await this.processes.get(name)?.kill();
    const process = this.spawn(name, env);
    await process.started();
    return process;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => p.kill("SIGKILL")));
  }
}
