/**
 * 3. Replay rate of resumable subscriptions: a backlog of OrderStateChanged
 * events on the stream, read back by a graphql-ws subscription with `after`,
 * with the memory of the (in-process) service; beside it, the raw JetStream
 * read rate of the same messages with an ordered consumer.
 *
 * The backlog is written straight into the outbox for orders inserted
 * straight into sales_orders, and the service runs only the gateway and the
 * relay, so no listener reacts to these synthetic changes.
 */
import { jetstream } from "@nats-io/jetstream";
import { tokens } from "../test/support/service.ts";
import {
  benchEnv,
  cpuMeter,
  cpuText,
  int,
  memorySampler,
  mib,
  ms,
  now,
  percentile,
  progress,
  rate,
  type Section,
  seconds,
  settleMemory,
  sleep,
  startBenchService,
  stateChangesDoc,
  stateChangesWithOrderDoc,
  subscribe,
  waitFor,
  within,
} from "./support.ts";

const backlog = Number(process.env.BENCH_REPLAY_EVENTS ?? 10_000);
const orderCount = 300;
const insertBatch = 1_000;
const customerId = "customer-1";

export async function run(): Promise<Section> {
  const step = progress("replay");
  const env = await benchEnv();
  const app = await startBenchService(env, "gateway,relay");
  step("service started (gateway, relay)");

  // Orders of the subscriber, with every NOT NULL column, as placeOrder would leave them.
  await env.pool.query(
    `insert into sales_orders (id, status, customer_id, contact_email, total_amount, currency,
                               required_modules, involved_modules, idempotency_key, request_hash, placed_event_id)
     select gen_random_uuid(), 'completed', $1, 'bench@example.com', 1299, 'EUR',
            array['finance'], array['finance'], 'bench-replay-' || g, 'bench', gen_random_uuid()
       from generate_series(1, $2::int) as g`,
    [customerId, orderCount],
  );
  const { rows: orderRows } = await env.pool.query<{ id: string }>("select id from sales_orders order by id");
  const orderIds = orderRows.map((r) => r.id);

  const lifecycle = [
    [null, "pending"],
    ["pending", "confirmed"],
    ["confirmed", "fulfilling"],
    ["fulfilling", "completed"],
  ];
  const b0 = now();
  for (let inserted = 0; inserted < backlog; inserted += insertBatch) {
    const batch = Math.min(insertBatch, backlog - inserted);
    // Event n: order n mod 300, transition n mod 4. One transaction per batch with its NOTIFY, as enqueue() does.
    await env.pool.query(
      `with rows as (
         insert into order_events (id, order_id, type, payload)
         select gen_random_uuid(), ($1::uuid[])[1 + (($3::int + g) % $4::int)], 'OrderStateChanged',
                jsonb_build_object('from', ($2::jsonb -> (($3::int + g) % 4)) -> 0,
                                   'to', ($2::jsonb -> (($3::int + g) % 4)) -> 1,
                                   'customerId', $5::text)
           from generate_series(0, $6::int - 1) as g
          order by g
         returning 1)
       select pg_notify('order_events', ''), (select count(*) from rows)`,
      [orderIds, JSON.stringify(lifecycle), inserted, orderIds.length, customerId, batch],
    );
  }
  const insertedIn = now() - b0;
  await waitFor(
    `the relay to publish ${backlog} events`,
    async () => {
      const { rows } = await env.pool.query<{ n: string }>(
        "select count(*) as n from order_events where published_at is null",
      );
      return Number(rows[0]!.n) === 0;
    },
    { timeoutMs: 30_000, intervalMs: 20 },
  );
  const publishedIn = now() - b0;
  step(`backlog of ${backlog} events built and published`);

  const { rows: ends } = await env.pool.query<{ id: string; first: string; last: string }>(
    `select (select id from order_events order by stream_seq limit 1) as id,
            min(stream_seq) as first, max(stream_seq) as last
       from order_events`,
  );
  const first = { id: ends[0]!.id, seq: Number(ends[0]!.first) };
  const lastSeq = Number(ends[0]!.last);
  const expected = backlog - 1;
  const customer = await tokens.customer();
  // The gateway's own tail has to have seen the whole backlog, so the replay covers all of it.
  await sleep(500);

  /** One resumed subscription, timed until it has every later event. */
  const replay = async (query: string, what: string) => {
    let received = 0;
    let firstAt: number | undefined;
    let lastAt = 0;
    const ids = new Set<string>();
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    const t0 = now();
    const subscription = subscribe(app.url, customer, query, { after: first.id }, (change) => {
      received++;
      ids.add(change.eventId);
      lastAt = now();
      firstAt ??= lastAt;
      if (received >= expected) done();
    });
    try {
      await within(`${what}: ${expected} events`, 90_000, all);
      await sleep(300); // nothing more should come
      if (subscription.failure())
        throw new Error(`${what} failed: ${JSON.stringify(subscription.failure())}`);
      if (received !== expected || ids.size !== expected)
        throw new Error(`${what}: ${received} events (${ids.size} distinct), expected ${expected}`);
    } finally {
      await subscription.close();
    }
    return { elapsed: lastAt - t0, firstAfter: (firstAt ?? lastAt) - t0 };
  };

  const before = await settleMemory();
  const sampler = memorySampler(50);
  const cpu = cpuMeter();
  const plain = await replay(stateChangesDoc, "replay");
  const cpuUse = cpu.stop();
  const peak = sampler.stop();
  const after = await settleMemory();
  step(`replay of ${expected} events`);

  const withOrder = await replay(stateChangesWithOrderDoc, "replay with order");
  step(`replay of ${expected} events with order { id status }`);

  // The same messages straight from JetStream, as the replay's filter selects them.
  const js = jetstream(env.nc);
  const stream = `${env.prefix}_events`;
  const filter = `${env.prefix}.events.OrderStateChanged.>`;
  const rawConsume = async () => {
    const consumer = await js.consumers.get(stream, { filter_subjects: filter, opt_start_seq: first.seq });
    const t0 = now();
    const messages = await consumer.consume();
    let n = 0;
    for await (const msg of messages) {
      msg.json();
      if (++n >= backlog || msg.info.streamSequence >= lastSeq) break;
    }
    const elapsed = now() - t0;
    await consumer.delete().catch(() => {});
    if (n !== backlog) throw new Error(`raw consume read ${n} of ${backlog}`);
    return elapsed;
  };
  // As bus.replay() reads: pages of 200 with fetch().
  const rawFetch = async () => {
    const consumer = await js.consumers.get(stream, { filter_subjects: filter, opt_start_seq: first.seq });
    const t0 = now();
    let n = 0;
    while (n < backlog) {
      const page = await consumer.fetch({ max_messages: 200, expires: 1_000 });
      let got = 0;
      for await (const msg of page) {
        got++;
        n++;
        msg.json();
      }
      if (got === 0) break;
    }
    const elapsed = now() - t0;
    await consumer.delete().catch(() => {});
    if (n !== backlog) throw new Error(`raw fetch read ${n} of ${backlog}`);
    return elapsed;
  };
  // Short reads: three of each, alternating, and the median.
  const consumeRuns: number[] = [];
  const fetchRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    consumeRuns.push(await within("raw JetStream consume", 30_000, rawConsume()));
    fetchRuns.push(await within("raw JetStream fetch", 30_000, rawFetch()));
  }
  const consumeMs = percentile(consumeRuns, 50);
  const fetchMs = percentile(fetchRuns, 50);
  step(`raw JetStream reads of ${backlog} messages`);
  await app.stop();

  const replayRate = expected / (plain.elapsed / 1000);
  const rawRate = backlog / (consumeMs / 1000);
  return {
    title: `3. Replay rate: a resumable subscription reads a backlog of ${int(backlog)} OrderStateChanged`,
    columns: ["measure", "time", "rate"],
    rows: [
      [
        `backlog inserted into the outbox (${orderCount} orders of one customer, batches of ${int(insertBatch)})`,
        seconds(insertedIn),
        rate(backlog, insertedIn, "rows"),
      ],
      [
        "… published by the relay (first insert → all published; the gateway's tail reads along)",
        seconds(publishedIn),
        rate(backlog, publishedIn, "events"),
      ],
      [
        `**replay** over graphql-ws, \`after\` the first: ${int(expected)} events { eventId orderId from to }`,
        seconds(plain.elapsed),
        `**${rate(expected, plain.elapsed, "events")}**`,
      ],
      ["· subscribe → first event", ms(plain.firstAfter), ""],
      [
        `replay with \`order { id status }\` (one SELECT per event)`,
        seconds(withOrder.elapsed),
        rate(expected, withOrder.elapsed, "events"),
      ],
      [
        `**raw JetStream**: ordered consumer, consume(), ${int(backlog)} messages (JSON parsed; median of 3)`,
        seconds(consumeMs),
        `**${rate(backlog, consumeMs, "events")}**`,
      ],
      [
        "raw JetStream: ordered consumer, fetch() pages of 200, as bus.replay reads (median of 3)",
        seconds(fetchMs),
        rate(backlog, fetchMs, "events"),
      ],
      ["**ratio** raw consume ÷ replay", "", `${(rawRate / replayRate).toFixed(1)}×`],
    ],
    extra: [
      {
        columns: [
          "memory of the process (service + subscriber) during the replay",
          "before",
          "peak",
          "after",
        ],
        rows: [
          ["rss", mib(before.rss), mib(peak.peakRss), mib(after.rss)],
          ["heapUsed", mib(before.heapUsed), mib(peak.peakHeap), mib(after.heapUsed)],
        ],
      },
    ],
    notes: [
      `CPU during the replay (% of one core): ${cpuText(cpuUse)}.`,
      "Memory: process.memoryUsage() of the benchmark process, which runs the service and the graphql-ws subscriber; before and after are taken after a full GC (--expose-gc), the peak is sampled every 50 ms.",
      "The service runs ROLES=gateway,relay: no listener reacts to the synthetic backlog.",
    ],
  };
}
