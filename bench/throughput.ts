/**
 * 2. Throughput: digital orders placed and confirmed by several clients at
 * once, until every one is COMPLETED; beside it, the rate of the relay alone
 * (outbox rows inserted directly, published by a process running only the
 * relay role) on the same database and stream.
 */
import { tokens } from "../test/support/service.ts";
import {
  benchEnv,
  cpuMeter,
  cpuText,
  int,
  ms,
  now,
  orderClient,
  progress,
  rate,
  type Section,
  seconds,
  startBenchService,
  summary,
  waitFor,
} from "./support.ts";

const orders = Number(process.env.BENCH_THROUGHPUT_ORDERS ?? 200);
const concurrency = Number(process.env.BENCH_THROUGHPUT_CONCURRENCY ?? 10);
const relayRows = Number(process.env.BENCH_RELAY_ROWS ?? 5_000);
const relayInsertBatch = 500;
const warmupOrders = 5;

export async function run(): Promise<Section> {
  const step = progress("throughput");
  const env = await benchEnv();
  const app = await startBenchService(env);
  step("service started");
  const client = orderClient(app.url, {
    customer: await tokens.customer(),
    payments: await tokens.payments(),
  });
  const completedAmong = async (ids: string[]) => {
    const { rows } = await env.pool.query<{ n: string }>(
      "select count(*) as n from sales_orders where status = 'completed' and id = any($1::uuid[])",
      [ids],
    );
    return Number(rows[0]!.n);
  };

  const warmup: string[] = [];
  for (let i = 0; i < warmupOrders; i++) {
    const id = await client.place();
    await client.confirm(id);
    warmup.push(id);
  }
  await waitFor(
    "the warm-up orders to complete",
    async () => (await completedAmong(warmup)) === warmupOrders,
  );
  step("warmed up");

  const ids: string[] = [];
  let next = 0;
  const ordersCpu = cpuMeter();
  const t0 = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < orders) {
        next++;
        const id = await client.place();
        ids.push(id);
        await client.confirm(id);
      }
    }),
  );
  const allConfirmed = now() - t0;
  await waitFor(`all ${orders} orders to complete`, async () => (await completedAmong(ids)) === orders, {
    timeoutMs: 90_000,
    intervalMs: 20,
  });
  const allCompleted = now() - t0;
  const ordersCpuUse = ordersCpu.stop();
  step(`${orders} orders completed`);

  const { rows: counted } = await env.pool.query<{ n: string }>(
    "select count(*) as n from order_events where order_id = any($1::uuid[])",
    [ids],
  );
  const events = Number(counted[0]!.n);
  const { rows: perOrder } = await env.pool.query<{ latency: number }>(
    `select extract(epoch from updated_at - created_at) * 1000 as latency
       from sales_orders where id = any($1::uuid[])`,
    [ids],
  );
  const underLoad = summary(perOrder.map((r) => Number(r.latency)));
  const { rows: lagRows } = await env.pool.query<{ lag: number }>(
    `select extract(epoch from published_at - occurred_at) * 1000 as lag
       from order_events where order_id = any($1::uuid[])`,
    [ids],
  );
  const lag = summary(lagRows.map((r) => Number(r.lag)));

  // The relay alone: nothing else runs, nothing consumes.
  await app.stop();
  await startBenchService(env, "relay");
  step("relay-only service started");
  const relayCpu = cpuMeter();
  const r0 = now();
  for (let inserted = 0; inserted < relayRows; inserted += relayInsertBatch) {
    const batch = Math.min(relayInsertBatch, relayRows - inserted);
    // As enqueue() does: the rows and a NOTIFY, in one transaction.
    await env.pool.query(
      `with rows as (
         insert into order_events (id, order_id, type, payload)
         select gen_random_uuid(), gen_random_uuid(), 'BenchRelayProbe',
                jsonb_build_object('from', 'pending', 'to', 'confirmed', 'customerId', 'customer-1', 'n', $1::int + g)
           from generate_series(1, $2::int) as g
         returning 1)
       select pg_notify('order_events', ''), (select count(*) from rows)`,
      [inserted, batch],
    );
  }
  const insertedIn = now() - r0;
  await waitFor(
    `the relay to publish ${relayRows} rows`,
    async () => {
      const { rows } = await env.pool.query<{ n: string }>(
        "select count(*) as n from order_events where type = 'BenchRelayProbe' and published_at is null",
      );
      return Number(rows[0]!.n) === 0;
    },
    { timeoutMs: 30_000, intervalMs: 20 },
  );
  const relayed = now() - r0;
  const relayCpuUse = relayCpu.stop();
  step(`relay published ${relayRows} rows`);

  const pipelineRate = events / (allCompleted / 1000);
  const relayRate = relayRows / (relayed / 1000);
  return {
    title: `2. Throughput: ${orders} digital orders, ${concurrency} clients at once`,
    columns: ["measure", "value"],
    rows: [
      ["orders placed and confirmed (EBOOK-1)", `${orders}, ${concurrency} at a time`],
      ["all placed and confirmed (mutations answered)", seconds(allConfirmed)],
      ["all COMPLETED (seen in sales_orders)", seconds(allCompleted)],
      ["**orders/s** (placement of the first → all COMPLETED)", rate(orders, allCompleted, "orders")],
      [
        "outbox events of those orders (order_events)",
        `${int(events)} (${(events / orders).toFixed(1)} per order)`,
      ],
      ["**outbox events/s**", rate(events, allCompleted, "events")],
      [
        "per-order latency under this load (created_at → updated_at) p50 / p95 / max",
        `${ms(underLoad.p50)} / ${ms(underLoad.p95)} / ${ms(underLoad.max)}`,
      ],
      ["CPU during the orders (% of one core; the machine has 2)", cpuText(ordersCpuUse)],
      [
        "relay lag under this load (occurred_at → published_at) p50 / p95 / max",
        `${ms(lag.p50)} / ${ms(lag.p95)} / ${ms(lag.max)}`,
      ],
      [
        `relay alone: ${int(relayRows)} outbox rows inserted (batches of ${relayInsertBatch}, with NOTIFY)`,
        `in ${seconds(insertedIn)}`,
      ],
      ["relay alone: first insert → all published", seconds(relayed)],
      ["**relay alone events/s**", rate(relayRows, relayed, "events")],
      ["CPU during the relay alone", cpuText(relayCpuUse)],
      ["**ratio** relay alone ÷ outbox events/s of the orders", `${(relayRate / pipelineRate).toFixed(1)}×`],
    ],
    notes: [
      `Service roles: ${app.roles}.`,
      `${warmupOrders} warm-up orders first, not counted. Completion is polled every 20 ms.`,
      "The relay-alone run uses the same database and stream, after the full service stopped, in a service started with ROLES=relay (the relay's default batch of 200 rows per transaction); the probe rows have a type no listener handles.",
    ],
  };
}
