/**
 * Relay drain: a backlog of 100,000 outbox rows committed at once, published
 * by a service running only the relay role; beside raw JetStream async
 * publishing of as many messages of the same size on the same NATS.
 */
import { randomUUID } from "node:crypto";
import { jetstreamPublishRate } from "./limits.ts";
import { spawnService } from "./service.ts";
import {
  benchEnv,
  cpuMeter,
  cpuText,
  int,
  ms,
  now,
  progress,
  rate,
  type Section,
  seconds,
  sleep,
  summary,
} from "./support.ts";

const events = Number(process.env.BENCH_RELAY_EVENTS ?? 100_000);
const orderCount = 1_000;
const drainLimitMs = Number(process.env.BENCH_RELAY_LIMIT_SECONDS ?? 180) * 1000;
const lateEvents = 20;

export async function run(): Promise<Section> {
  const step = progress("relay");
  const env = await benchEnv();
  const raw = await jetstreamPublishRate(env, { count: events, bytes: 300 });
  step(`raw JetStream: ${Math.round(raw.perSecond)} messages/s`);

  const app = await spawnService(env, { roles: "relay" });
  step("relay-only service started");
  const unpublished = async () => {
    const { rows } = await env.pool.query<{ n: string }>(
      "select count(*) as n from order_events where published_at is null",
    );
    return Number(rows[0]!.n);
  };
  // One transaction, as enqueue() writes (rows, then NOTIFY): the relay finds the whole backlog at once.
  // Events of 1,000 orders, 100 each, with a payload the size of a state change's.
  const i0 = now();
  await env.pool.query(
    `with orders as (select gen_random_uuid() as id, o from generate_series(0, $2::int - 1) as o),
          rows as (
       insert into order_events (id, order_id, type, payload)
       select gen_random_uuid(), orders.id, 'BenchRelayProbe',
              jsonb_build_object('from', 'pending', 'to', 'confirmed', 'customerId', 'customer-1', 'n', g,
                                 'note', repeat('x', 120))
         from generate_series(0, $1::int - 1) as g join orders on orders.o = g % $2::int
        order by g
       returning 1)
     select pg_notify('order_events', ''), (select count(*) from rows)`,
    [events, orderCount],
  );
  const insertedIn = now() - i0;
  const cpu = cpuMeter(app.pids);
  const t0 = now();
  const sql0 = await app.sql();
  // Bounded: a relay that cannot drain the backlog in time is reported at the rate it reached.
  let left = events;
  while (left > 0 && now() - t0 < drainLimitMs) {
    left = await unpublished();
    if (left > 0) await sleep(50);
  }
  const drained = now() - t0;
  const published = events - left;
  const sql1 = await app.sql();
  const cpuUse = cpu.stop();
  step(`published ${published} of ${events} events`);
  // Then single events, one at a time, behind the backlog just published: its rows' entries in the
  // relay's index of unpublished rows are dead until a vacuum (none here: this machine's PostgreSQL
  // runs without autovacuum, and elsewhere its naptime is a minute). Commit → seen published.
  const late: number[] = [];
  for (let i = 0; i < lateEvents && left === 0; i++) {
    const id = randomUUID();
    const t = now();
    await env.pool.query(
      "insert into order_events (id, order_id, type, payload) values ($1, gen_random_uuid(), 'BenchRelayProbe', '{}')",
      [id],
    );
    for (;;) {
      const { rows } = await env.pool.query<{ done: boolean }>(
        "select published_at is not null as done from order_events where id = $1",
        [id],
      );
      if (rows[0]?.done) break;
      await sleep(1);
    }
    late.push(now() - t);
  }
  const lateLag = summary(late);
  await app.stop();

  const relayRate = published / (drained / 1000);
  return {
    title: `Relay drain: ${int(events)} outbox events committed at once, against raw JetStream async publishing`,
    columns: ["measure", "time", "rate"],
    rows: [
      [
        `**limit**: raw JetStream async publish of ${int(events)} messages (300 bytes, message ids, ≤ 1,000 in flight)`,
        seconds(raw.elapsedMs),
        `**${rate(events, raw.elapsedMs, "messages")}**`,
      ],
      [`backlog committed (one transaction, ${int(orderCount)} orders)`, seconds(insertedIn), ""],
      [
        "**relay drain** (commit → every row published)",
        seconds(drained),
        `**${rate(events, drained, "events")}**`,
      ],
      ["relay ÷ raw JetStream", "", `${Math.round((100 * relayRate) / raw.perSecond)}%`],
      [
        `then one event at a time behind them (${lateEvents}, the backlog not vacuumed): commit → published, p50 / max`,
        late.length > 0 ? `${ms(lateLag.p50)} / ${ms(lateLag.max)}` : "–",
        "",
      ],
      [
        "SQL statements (transactions) per 1,000 events",
        "",
        `${Math.round(((sql1.statements - sql0.statements) * 1000) / published)} (${Math.round(((sql1.transactions - sql0.transactions) * 1000) / published)})`,
      ],
    ],
    notes: [
      `CPU during the drain (% of one core): ${cpuText(cpuUse)}.`,
      "The service runs ROLES=relay, its own process, its defaults; the probe rows have a type no listener handles. Nothing consumes them.",
    ],
  };
}
