/**
 * Closed-loop throughput: 32 clients, each placing and paying a digital order
 * (EBOOK-1) and waiting for its COMPLETED on graphql-ws before the next, for
 * a fixed time; with PostgreSQL commits per order (pg_stat_database deltas of
 * the bench database) and SQL statements per order (counted at the service's
 * pg client), beside PostgreSQL's commit rate measured in the same run.
 */
import { tokens } from "../test/support/service.ts";
import { pgCommitRate } from "./limits.ts";
import { closedLoop, Seen, watchAll } from "./load.ts";
import { commits, spawnService, statsFlushMs } from "./service.ts";
import {
  benchEnv,
  cpuMeter,
  cpuText,
  int,
  ms,
  orderClient,
  progress,
  type Section,
  sleep,
  summary,
} from "./support.ts";

const clients = Number(process.env.BENCH_CLIENTS ?? 32);
const durationMs = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 20) * 1000;
const warmUpMs = Number(process.env.BENCH_THROUGHPUT_WARM_UP_SECONDS ?? 15) * 1000;

export async function run(): Promise<Section> {
  const step = progress("throughput");
  const env = await benchEnv();
  const commitRate = await pgCommitRate(env);
  step(`PostgreSQL commit rate ${Math.round(commitRate)}/s`);

  const app = await spawnService(env);
  step(`service started (ROLES=${app.roles}, pid ${app.pid})`);
  const customer = await tokens.customer();
  const orders = orderClient(app.url, { customer, payments: await tokens.payments() });
  const seen = new Seen();
  const watcher = watchAll(app.url, customer, seen);
  await sleep(300);
  // Warm-up: JIT, pools, consumers.
  await closedLoop(orders, seen, { clients, durationMs: warmUpMs });
  await sleep(statsFlushMs); // pg_stat_database: until every backend has reported the warm-up's commits
  step("warmed up");

  const commits0 = await commits(env);
  const sql0 = await app.sql();
  const cpu = cpuMeter(app.pids);
  const result = await closedLoop(orders, seen, { clients, durationMs });
  const cpuUse = cpu.stop();
  const sql1 = await app.sql();
  await sleep(statsFlushMs);
  const commits1 = await commits(env);
  const rss = app.rss();
  step(`${result.completed} orders completed in ${durationMs / 1000} s`);
  if (watcher.failure()) throw new Error(`subscription failed: ${JSON.stringify(watcher.failure())}`);
  await watcher.close();
  await app.stop();

  // The loop returns once every order it started has completed: the work of each is in the counts.
  const perOrder = (n: number) => (result.started > 0 ? (n / result.started).toFixed(1) : "–");
  const lat = summary(result.latencies);
  const ordersPerSecond = result.completed / (durationMs / 1000);
  return {
    title: `Closed loop: ${clients} clients, each places and pays an order and waits for COMPLETED, ${durationMs / 1000} s`,
    columns: ["measure", "value", "limit (same run)", "target"],
    rows: [
      [
        "**orders COMPLETED per second**",
        `**${ordersPerSecond.toFixed(1)}**`,
        `PostgreSQL commits ${int(Math.round(commitRate))}/s ÷ 3 = ${int(Math.round(commitRate / 3))} orders/s`,
        "≥ 300 (done when ≥ 150)",
      ],
      [
        "orders completed in the window (started in it)",
        `${int(result.completed)} (${int(result.started)})`,
        "",
        "",
      ],
      [
        "**PostgreSQL commits per order** (xact_commit of the bench database)",
        `**${perOrder(commits1 - commits0)}**`,
        "",
        "≤ 3",
      ],
      [
        "SQL queries per order (the service's pg clients; a BEGIN or COMMIT sent with a statement counts with it)",
        perOrder(sql1.statements - sql0.statements),
        "",
        "",
      ],
      [
        "transactions (BEGIN) per order, at the service's pg clients",
        perOrder(sql1.transactions - sql0.transactions),
        "",
        "",
      ],
      [
        "order latency under this load (placeOrder sent → COMPLETED seen) p50 / p99",
        `${ms(lat.p50)} / ${ms(lat.p99)}`,
        "",
        "",
      ],
      ["CPU (% of one core)", cpuText(cpuUse), "", ""],
      ["gateway RSS at the end", `${(rss / 1024 / 1024).toFixed(0)} MiB`, "", ""],
    ],
    notes: [
      `Service: \`node --import tsx src/main.ts\`, ROLES=${app.roles}, its own process; the clients and the subscriber run in the bench process.`,
      "Per-order figures: the counts from the start of the window until every order started in it has completed, divided by those orders.",
      `PostgreSQL's commit rate: 16 connections looping BEGIN; INSERT; COMMIT for 3 s on the same server. An order at the target's 3 commits could go no faster than a third of it.`,
      "Commits are pg_stat_database.xact_commit deltas: every client of the bench database counts (the service; the bench sends none during the window); a backend reports them once idle a second after its last report, or after 10 s idle, so the bench waits 11 s before each reading.",
    ],
  };
}
