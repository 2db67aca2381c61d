/**
 * Fan-out: many subscribers on one gateway, each following its own order
 * (`orderStateChanged(orderId:)`), while orders progress at 100 a second;
 * latency confirmPayment sent → COMPLETED seen by that order's subscriber,
 * and the gateway's RSS. The orders are placed first (PENDING), each gets its
 * subscriber, then they are paid on a fixed schedule.
 */
import { tokens } from "../test/support/service.ts";
import { connection, follow, Seen } from "./load.ts";
import { spawnService } from "./service.ts";
import {
  benchEnv,
  cpuMeter,
  cpuText,
  int,
  mib,
  ms,
  now,
  onCleanUp,
  orderClient,
  progress,
  type Section,
  sleep,
  subscriptionFailure,
  summary,
  waitFor,
} from "./support.ts";

const subscribers = Number(process.env.BENCH_FANOUT_SUBSCRIBERS ?? 10_000);
const rate = Number(process.env.BENCH_FANOUT_RATE ?? 100);
const durationMs = Number(process.env.BENCH_FANOUT_SECONDS ?? 8) * 1000;
/** Placing the orders is bounded too: on a slow service the run follows fewer orders, and says so. */
const placeBudgetMs = Number(process.env.BENCH_FANOUT_PLACE_SECONDS ?? 60) * 1000;
const drainMs = 15_000;
const perConnection = 100;

async function liveSubscriptions(url: string): Promise<number> {
  const text = await (await fetch(url.replace(/\/graphql$/, "/metrics"))).text();
  return Number(/^orders_live_subscriptions (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

export async function run(): Promise<Section> {
  const step = progress("fanout");
  const env = await benchEnv();
  const app = await spawnService(env);
  const customer = await tokens.customer();
  const orders = orderClient(app.url, { customer, payments: await tokens.payments() });
  const rssIdle = app.rss();

  // The orders, placed by 32 clients at once.
  const ids: string[] = [];
  const placeEnd = now() + placeBudgetMs;
  let started = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (started < subscribers && now() < placeEnd) {
        started++;
        const id = await orders.place().catch(() => undefined);
        if (id) ids.push(id);
      }
    }),
  );
  step(`${ids.length} orders placed`);

  // One subscriber per order, `perConnection` of them on each graphql-ws connection.
  const seen = new Seen();
  let failure: unknown;
  let subscriptionFailures = 0;
  const clients = [];
  for (let c = 0; c * perConnection < ids.length; c++) {
    const client = connection(app.url, customer);
    clients.push(client);
    for (const orderId of ids.slice(c * perConnection, (c + 1) * perConnection))
      follow(
        client,
        { orderId },
        (change) => seen.record(change),
        (e) => {
          failure ??= e;
          subscriptionFailures++;
        },
      );
  }
  const live = await waitFor(
    `${ids.length} live subscriptions`,
    async () => {
      const n = await liveSubscriptions(app.url);
      return n >= ids.length ? n : failure ? Promise.reject(failure) : false;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await sleep(500);
  const rssSubscribed = app.rss();
  step(`${live} subscribers live, gateway RSS ${mib(rssSubscribed)}`);

  // Pay them on schedule; sample the gateway's RSS meanwhile.
  let rssPeak = rssSubscribed;
  const sampler = setInterval(() => {
    const rss = app.rss();
    if (Number.isFinite(rss)) rssPeak = Math.max(rssPeak, rss);
  }, 200);
  onCleanUp("stop sampling the RSS", async () => clearInterval(sampler));
  const cpu = cpuMeter(app.pids);
  const count = Math.min(ids.length, Math.round((rate * durationMs) / 1000));
  const confirmSent = new Map<string, number>();
  let confirmFailures = 0;
  const t0 = now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / rate - now();
    if (wait > 0) await sleep(wait);
    const id = ids[i]!;
    confirmSent.set(id, now());
    inFlight.push(
      orders.confirm(id).catch(() => {
        // An overloaded service refuses or times out: that order never completes, and counts as late.
        confirmFailures++;
      }),
    );
  }
  await Promise.all(inFlight);
  const deadline = now() + drainMs;
  const samples = await Promise.all(
    [...confirmSent].map(async ([id, sent]) => {
      const at = await seen.until(id, "COMPLETED", Math.max(1, deadline - now())).catch(() => undefined);
      return at === undefined ? Number.POSITIVE_INFINITY : at - sent;
    }),
  );
  const cpuUse = cpu.stop();
  clearInterval(sampler);
  if (Number.isFinite(app.rss())) rssPeak = Math.max(rssPeak, app.rss());
  const lat = summary(samples);
  const incomplete = samples.filter((s) => !Number.isFinite(s)).length;
  step(`${count} orders paid at ${rate}/s: p99 ${ms(lat.p99)}`);
  // Once all are live, a dropped subscription is part of the result (an overloaded gateway's keep-alive can
  // give up on a connection), not a reason to throw the run away: its orders count as not done.
  const dropped =
    failure === undefined ? "none" : `${subscriptionFailures} (first: ${subscriptionFailure(failure)})`;
  await Promise.all(clients.map((c) => c.dispose()));
  await app.stop();

  const shown = (v: number) =>
    Number.isFinite(v) ? ms(v) : `> ${drainMs / 1000} s (${incomplete} not done)`;
  return {
    title: `Fan-out: ${int(ids.length)} subscribers each following its own order, orders paid at ${rate}/s`,
    columns: ["measure", "value", "target"],
    rows: [
      ["per-order subscribers live on the gateway", int(live), `${int(subscribers)}`],
      [
        `orders paid (${rate}/s for ${durationMs / 1000} s; refused or timed out)`,
        `${int(count)} (${int(confirmFailures)})`,
        "",
      ],
      ["confirmPayment sent → COMPLETED seen by the order's subscriber, p50", shown(lat.p50), ""],
      ["… p95", shown(lat.p95), ""],
      ["**… p99**", `**${shown(lat.p99)}**`, "≤ 100 ms"],
      ["subscriptions that failed while the orders progressed", dropped, "none"],
      ["gateway RSS, idle", mib(rssIdle), ""],
      ["gateway RSS with the subscribers", mib(rssSubscribed), ""],
      ["**gateway RSS, peak while the orders progress**", `**${mib(rssPeak)}**`, "≤ 1 GiB"],
      ["CPU while the orders progress (% of one core)", cpuText(cpuUse), ""],
    ],
    notes: [
      `The subscribers are one customer's (${perConnection} subscriptions per graphql-ws connection, ${clients.length} connections), in the bench process; the service (ROLES=all) in its own, with its per-caller limits lifted.`,
      `The orders are placed first by 32 clients (for at most ${placeBudgetMs / 1000} s: a slow service gets fewer subscribers than ${int(subscribers)}, and the first row says so); only the first ${int(count)} are paid. RSS from /proc/<pid>/status of the service's process, sampled every 200 ms.`,
      "For comparison, see the open-loop latency at the same rate with one subscriber.",
    ],
  };
}
