/**
 * 1. Order latency: a digital order (EBOOK-1, only Finance involved) from
 * placeOrder to the COMPLETED change seen on a graphql-ws subscription, N
 * sequential orders, beside the floor measured in the same run.
 *
 * Path after the payment is confirmed: relay → finance (issue invoice) →
 * relay → finance (settle) and orders (→ FULFILLING) → relay → orders
 * (→ COMPLETED) → relay → the gateway's tail → the subscriber. That is four
 * listener transactions on the critical path and four relay hops.
 *
 * Measured twice on the same database and stream: with every role (as
 * `npm start` runs, or BENCH_ROLES), then with only the roles such an order
 * needs, to show what the roles off its path cost it in a shared process.
 */
import os from "node:os";
import { tokens } from "../test/support/service.ts";
import { floorSummary, measureFloor } from "./floor.ts";
import {
  type BenchEnv,
  benchEnv,
  type CpuReport,
  countStatements,
  cpuMeter,
  cpuText,
  ms,
  now,
  orderClient,
  progress,
  type Section,
  type StateChange,
  sleep,
  startBenchService,
  stateChangesDoc,
  subscribe,
  summary,
  waitFor,
  within,
} from "./support.ts";

const orders = Number(process.env.BENCH_LATENCY_ORDERS ?? 50);
const warmupOrders = 5;
/** What a digital order needs: the mutations and the subscription, the relay, the completion aggregate, Finance. */
const digitalRoles = "gateway,relay,orders,finance";

interface Seen {
  at: Record<string, number>;
  waiters: Map<string, () => void>;
}

interface Samples {
  roles: string;
  total: number[];
  place: number[];
  confirm: number[];
  afterConfirm: number[];
  toConfirmed: number[];
  toFulfilling: number[];
  toCompleted: number[];
  ids: string[];
  cpu: CpuReport;
  statementsPerOrder: number;
  transactionsPerOrder: number;
}

const statementCount = countStatements();

/** Starts the service with `roles`, warms it up, then places N orders one after the other. */
async function measureOrders(
  env: BenchEnv,
  roles: string,
  step: (what: string) => void,
  between?: () => Promise<void>,
): Promise<Samples> {
  const app = await startBenchService(env, roles);
  step(`service started (${roles})`);
  const customer = await tokens.customer();
  const client = orderClient(app.url, { customer, payments: await tokens.payments() });

  const seen = new Map<string, Seen>();
  const entry = (orderId: string) => {
    let e = seen.get(orderId);
    if (!e) {
      e = { at: {}, waiters: new Map() };
      seen.set(orderId, e);
    }
    return e;
  };
  const subscription = subscribe(app.url, customer, stateChangesDoc, {}, (change: StateChange) => {
    const e = entry(change.orderId);
    e.at[change.to] ??= now();
    e.waiters.get(change.to)?.();
  });
  const until = (orderId: string, to: string) => {
    const e = entry(orderId);
    const at = e.at[to];
    if (at !== undefined) return Promise.resolve(at);
    return within(
      `${to} of order ${orderId} on the subscription`,
      15_000,
      new Promise<number>((resolve) => e.waiters.set(to, () => resolve(e.at[to]!))),
    );
  };

  // The subscription is lazy: give it a moment, then warm up (JIT, pools, consumers) until it sees a completion.
  await sleep(300);
  for (let i = 0; i < warmupOrders; i++) {
    const id = await client.place();
    await client.confirm(id);
    await waitFor("a warm-up order to complete", async () => {
      const { rows } = await env.pool.query("select status from sales_orders where id = $1", [id]);
      return rows[0]?.status === "completed";
    });
    if (i === warmupOrders - 1) await until(id, "COMPLETED");
  }
  step("warmed up");
  await between?.();

  const s: Omit<Samples, "cpu" | "statementsPerOrder" | "transactionsPerOrder"> = {
    roles,
    total: [],
    place: [],
    confirm: [],
    afterConfirm: [],
    toConfirmed: [],
    toFulfilling: [],
    toCompleted: [],
    ids: [],
  };
  const cpu = cpuMeter();
  const sql0 = statementCount();
  for (let i = 0; i < orders; i++) {
    const t0 = now();
    const id = await client.place();
    const placed = now();
    await client.confirm(id);
    const confirmed = now();
    const completed = await until(id, "COMPLETED");
    const at = entry(id).at;
    s.ids.push(id);
    s.total.push(completed - t0);
    s.place.push(placed - t0);
    s.confirm.push(confirmed - placed);
    s.afterConfirm.push(completed - confirmed);
    s.toConfirmed.push(at.CONFIRMED! - confirmed);
    s.toFulfilling.push(at.FULFILLING! - at.CONFIRMED!);
    s.toCompleted.push(completed - at.FULFILLING!);
  }
  const cpuUse = cpu.stop();
  const sql1 = statementCount();
  if (subscription.failure())
    throw new Error(`subscription failed: ${JSON.stringify(subscription.failure())}`);
  await subscription.close();
  await app.stop();
  step(`${orders} orders measured (${roles})`);
  return {
    ...s,
    cpu: cpuUse,
    statementsPerOrder: (sql1.statements - sql0.statements) / orders,
    transactionsPerOrder: (sql1.transactions - sql0.transactions) / orders,
  };
}

export async function run(): Promise<Section> {
  const step = progress("latency");
  const env = await benchEnv();
  let floorSamples: Awaited<ReturnType<typeof measureFloor>> | undefined;
  const full = await measureOrders(env, process.env.BENCH_ROLES ?? "all", step, async () => {
    floorSamples = await measureFloor(env, orders);
    step("floor measured");
  });
  const digital = await measureOrders(env, digitalRoles, step);
  const floor = floorSummary(floorSamples!);

  const { rows: lagRows } = await env.pool.query<{ lag: number }>(
    `select extract(epoch from published_at - occurred_at) * 1000 as lag
       from order_events where order_id = any($1::uuid[])`,
    [full.ids],
  );
  const lag = lagRows.map((r) => Number(r.lag));
  const eventsPerOrder = lag.length / full.ids.length;

  const floorAt = (p: "p50" | "p95" | "max") => 4 * floor.pgTransaction[p] + 4 * floor.jsDelivery[p];
  const line = (name: string, samples: number[]) => {
    const s = summary(samples);
    return [name, ms(s.p50), ms(s.p95), ms(s.max), String(s.n)];
  };
  const floorLine = (name: string, s: { p50: number; p95: number; max: number; n: number }) => [
    name,
    ms(s.p50),
    ms(s.p95),
    ms(s.max),
    String(s.n),
  ];
  const ratio = (name: string, samples: number[]) => {
    const s = summary(samples);
    return [
      name,
      `${(s.p50 / floorAt("p50")).toFixed(1)}×`,
      `${(s.p95 / floorAt("p95")).toFixed(1)}×`,
      `${(s.max / floorAt("max")).toFixed(1)}×`,
      "",
    ];
  };
  const work = (s: Samples) =>
    `${s.statementsPerOrder.toFixed(0)} SQL statements in ${s.transactionsPerOrder.toFixed(0)} transactions per order; CPU ${cpuText(s.cpu)}`;

  return {
    title: `1. Order latency: placement → COMPLETED (EBOOK-1, ${orders} sequential orders)`,
    columns: ["measure", "p50", "p95", "max", "n"],
    rows: [
      line(
        `**order latency**: placeOrder sent → COMPLETED seen on graphql-ws (ROLES=${full.roles})`,
        full.total,
      ),
      line("· placeOrder (HTTP round trip)", full.place),
      line("· confirmPayment (HTTP round trip)", full.confirm),
      line("· confirm answered → COMPLETED seen (the asynchronous part)", full.afterConfirm),
      line("· · confirm answered → CONFIRMED seen (1 relay hop + the gateway's tail)", full.toConfirmed),
      line("· · CONFIRMED seen → FULFILLING seen (finance tx, hop, orders tx, hop)", full.toFulfilling),
      line("· · FULFILLING seen → COMPLETED seen (orders tx, hop)", full.toCompleted),
      line(`relay lag per outbox event (occurred_at → published_at), ${eventsPerOrder} events/order`, lag),
      line(`order latency with only ROLES=${digital.roles}`, digital.total),
      line("· confirm answered → COMPLETED seen (the asynchronous part)", digital.afterConfirm),
      floorLine("floor (a): one PostgreSQL transaction (BEGIN; INSERT; COMMIT)", floor.pgTransaction),
      floorLine("floor (a′): one PostgreSQL round trip (select 1)", floor.pgRoundTrip),
      floorLine("floor (b): JetStream publish → durable consumer delivery", floor.jsDelivery),
      floorLine("floor (b′): JetStream publish → PubAck", floor.jsPubAck),
      ["**floor** = 4 × (a) + 4 × (b)", ms(floorAt("p50")), ms(floorAt("p95")), ms(floorAt("max")), ""],
      ratio(`**ratio** order latency ÷ floor (ROLES=${full.roles})`, full.total),
      ratio("ratio asynchronous part ÷ floor", full.afterConfirm),
      ratio(`ratio order latency ÷ floor (ROLES=${digital.roles})`, digital.total),
    ],
    notes: [
      `ROLES=${full.roles}: ${work(full)}.`,
      `ROLES=${digital.roles}: ${work(digital)}.`,
      `CPU is in % of one core (the machine has ${os.cpus().length}); SQL statements are counted at pg.Client#query while the orders run (the load generator sends none then).`,
      `${warmupOrders} warm-up orders before each series, not counted. The floor is measured with the service started and idle, after the first warm-up.`,
      "The floor counts the 4 listener transactions and 4 relay hops of the critical path as one bare transaction and one bare publish→delivery each; the real path adds the two mutations, the relay's own transaction per hop (claim, publish, mark) and several statements per listener transaction.",
    ],
  };
}
