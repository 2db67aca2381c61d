import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { expect } from "vitest";
import { Cluster, type ClusterOptions } from "../support/cluster.ts";
import {
  type CheckedOrder,
  FaultChecker,
  problemsOf,
  type SubscriberView,
} from "../support/fault-checker.ts";
import { type DriveStats, driveOrders, type PlannedOrder, planOrders, Subscriber } from "../support/load.ts";
import { liveSubscriptions } from "../support/service.ts";
import { type SmtpTestServer, startSmtpServer } from "../support/smtp.ts";
import { artifacts, record } from "./report.ts";

/** One test file's system: the roles in their processes, an SMTP sink, four subscribers on two gateways. */
export class FaultEnv {
  cluster!: Cluster;
  smtp!: SmtpTestServer;
  sql!: pg.Pool;
  checker!: FaultChecker;
  views: SubscriberView[] = [];

  async start(options: Omit<ClusterOptions, "smtpUrl">): Promise<void> {
    this.smtp = await startSmtpServer();
    this.sql = new pg.Pool({ connectionString: options.databaseUrl, max: 3 });
    this.sql.on("error", () => {});
    this.cluster = new Cluster({ ...options, smtpUrl: this.smtp.url });
    await this.cluster.start();
    this.checker = new FaultChecker(this.sql, this.smtp.received);
    const [g1, g2] = this.cluster.gateways as [string, string];
    this.views = [
      { subscriber: new Subscriber("admin on gateway 1", g1, { role: "admin", id: "admin" }) },
      { subscriber: new Subscriber("admin on gateway 2", g2, { role: "admin", id: "admin" }) },
      {
        subscriber: new Subscriber("customer-1 on gateway 1", g1, { role: "customer", id: "customer-1" }),
        customer: "customer-1",
      },
      {
        subscriber: new Subscriber("customer-2 on gateway 2", g2, { role: "customer", id: "customer-2" }),
        customer: "customer-2",
      },
    ];
    for (const { subscriber } of this.views) await subscriber.start();
    await liveSubscriptions(`${g1}/graphql`, 2);
    await liveSubscriptions(`${g2}/graphql`, 2);
  }

  async stop(): Promise<void> {
    for (const { subscriber } of this.views) subscriber.close();
    await this.cluster?.stop();
    // The logs of the processes as they were last started, for when a scenario fails.
    const dir = join(artifacts, "logs");
    mkdirSync(dir, { recursive: true });
    for (const [name, p] of this.cluster?.processes ?? [])
      writeFileSync(join(dir, `${this.cluster.prefix}-${name}.log`), p.output);
    await this.sql?.end();
    await this.smtp?.close();
  }
}

export interface FaultContext {
  env: FaultEnv;
  /** Resolves once n of the scenario's orders have been placed and paid (driven through). */
  driven(n: number): Promise<void>;
  /**
   * The fault strikes now: counts the orders in flight (or takes the count
   * given: every order of a fault that lasts the whole load) and starts the
   * recovery clock.
   */
  strike(inFlight?: number): Promise<void>;
  /** For an outage: the clock of recovery starts when it ends. */
  recovered(): void;
}

export interface ScenarioSpec {
  order: number;
  name: string;
  orders?: number;
  concurrency?: number;
  /** Changes the plan (a poisoned order, say). */
  plan?: (plans: PlannedOrder[]) => PlannedOrder[];
  /** What each driven order should end as (default: completed, or cancelled). */
  expect?: (orders: CheckedOrder[]) => void;
  /** Before the load starts (a process started with other settings). */
  prepare?(): Promise<void>;
  fault(ctx: FaultContext): Promise<void>;
  /** After the checks: scenario-specific assertions. */
  after?(orders: CheckedOrder[], stats: DriveStats): Promise<void> | void;
  note?: string | (() => string);
  settleMs?: number;
}

/**
 * Drives the scenario's orders while the fault strikes, waits until the
 * system has settled, checks it with the shared checker and records the row
 * of the table.
 */
export async function runScenario(env: FaultEnv, spec: ScenarioSpec): Promise<void> {
  const n = spec.orders ?? 100;
  const tag = `${spec.name.replace(/\W+/g, "-")}-${Date.now()}`;
  const plans = (spec.plan ?? ((p) => p))(planOrders(n, tag));
  await spec.prepare?.();
  const since = new Date(Date.now() - 1_000);
  let driven = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const stats: DriveStats = { mutationFailures: 0 };
  let struckAt: number | undefined;
  let recoveredAt: number | undefined;
  let inFlight = 0;
  const driving = driveOrders(env.cluster.gateways, plans, {
    concurrency: spec.concurrency ?? 8,
    stats,
    onDriven: (count) => {
      driven = count;
      for (const w of waiters.filter((w) => w.n <= count)) w.resolve();
    },
  });
  const ctx: FaultContext = {
    env,
    driven: (k) =>
      driven >= k ? Promise.resolve() : new Promise((resolve) => waiters.push({ n: k, resolve })),
    async strike(count) {
      struckAt = Date.now();
      inFlight = count ?? (await env.checker.inFlight(since).catch(() => -1));
    },
    recovered() {
      recoveredAt = Date.now();
    },
  };
  // A fault that fails (a process that did not die where told) fails the scenario, after the load ends.
  const [orders] = await Promise.all([driving, spec.fault(ctx)]);
  const checked: CheckedOrder[] = orders.map((o) => ({ ...o }));
  spec.expect?.(checked);
  const settledAt = await env.checker.settled(checked, env.views, spec.settleMs ?? 180_000);
  // A moment for anything that would come twice to come.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const findings = await env.checker.findings(checked, env.views);
  // Its own assertions first (they fill the note in), recorded whatever they say.
  const extra = await Promise.resolve(spec.after?.(checked, stats)).then(
    () => undefined,
    (error: unknown) => error,
  );
  const from = recoveredAt ?? struckAt ?? settledAt;
  const ids = new Set(checked.map((o) => o.id));
  record({
    order: spec.order,
    scenario: spec.name,
    orders: n,
    inFlight,
    eventsLost: findings.eventsLost.length,
    effectsDoubled: findings.effectsDoubled.length,
    subscriberDuplicates: findings.subscriberDuplicates.length,
    subscriberMissing: findings.subscriberMissing.length,
    mailsSent: env.smtp.received.filter((m) => ids.has(m.orderId)).length,
    recoverSeconds: (settledAt - from) / 1000,
    note: typeof spec.note === "function" ? spec.note() : (spec.note ?? ""),
  });
  expect(problemsOf(findings)).toEqual([]);
  if (extra) throw extra;
}
