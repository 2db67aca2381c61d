/**
 * Relay drain with K partitions, beside raw JetStream async publishing of the
 * same number of messages in the same run. Standalone and focused, so it can be
 * rerun while working on the relay:
 *
 *   npx tsx bench/relay-partitions.ts            # 20,000 events, K = 1, 2, 4, one relay
 *   BENCH_DRAIN_EVENTS=100000 BENCH_RELAYS=2 npx tsx bench/relay-partitions.ts
 *   BENCH_CLUSTERED=1 npx tsx bench/relay-partitions.ts   # an order's 10 events next to each other
 *
 * By default the outbox holds event 1 of every order, then event 2 of every
 * order, ...: a batch of 200 rows holds 200 orders and goes out in one wave.
 * Clustered, a batch holds 20 orders of 10 events and goes out in 10 waves of
 * 20 (each wave waits for the acks of the one before: an order's events go out
 * one after the other), the relay's worst case.
 *
 * The outbox rows are inserted in bulk while no relay runs; the clock starts
 * when the relay starts and stops when its last row is marked. Beside the time:
 * the relay's transactions (batches) and PostgreSQL's commits and statements
 * over the drain, and a check that each order's events sit in the stream in
 * the outbox's order.
 */

import { cpus } from "node:os";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { type Database, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import type { BusEvent } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { Relay } from "../src/relay/relay.ts";
import { createTestDatabase, natsUrl, testPrefix } from "../test/support/database.ts";
import { statsFlushMs } from "./service.ts";

const events = Number(process.env.BENCH_DRAIN_EVENTS ?? 20_000);
const relayCount = Number(process.env.BENCH_RELAYS ?? 1);
const partitionCounts = (process.env.BENCH_PARTITIONS ?? "1,2,4").split(",").map(Number);
const eventsPerOrder = 10;
const clustered = process.env.BENCH_CLUSTERED === "1";
const logger = createLogger("silent");
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function rawPublish(prefix: string): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const stream = `${prefix}_raw`;
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.raw.>`], duplicate_window: 120_000_000_000 });
  const js = jetstream(nc);
  const payload = JSON.stringify({ type: "Probe", payload: { n: 1 }, occurredAt: new Date().toISOString() });
  const t0 = performance.now();
  // The same shape as the relay's waves: 200 in flight, then their acks.
  for (let i = 0; i < events; i += 200) {
    const acks = [];
    for (let j = i; j < Math.min(i + 200, events); j++)
      acks.push(js.publish(`${prefix}.raw.Probe.${j % 1000}`, payload, { msgID: `raw-${j}` }));
    await Promise.all(acks);
  }
  const took = performance.now() - t0;
  await jsm.streams.delete(stream);
  await nc.close();
  return took;
}

async function stats(sql: pg.Client, name: string) {
  const { rows } = await sql.query<{ commits: string }>(
    "select xact_commit as commits from pg_stat_database where datname = $1",
    [name],
  );
  return Number(rows[0]!.commits);
}

async function drain(url: string, dbName: string, prefix: string, partitions: number) {
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  await sql.query(
    `insert into order_events (id, order_id, type, payload)
     select gen_random_uuid(), o.id, 'Probe', jsonb_build_object('n', e)
       from (select gen_random_uuid() as id, g from generate_series(1, $1::int) g) o,
            generate_series(1, $2::int) e
      order by ${clustered ? "o.g, e" : "e, o.g"}`,
    [events / eventsPerOrder, eventsPerOrder],
  );
  // As autovacuum would after such an insert: with the empty table's statistics, the claim's plan
  // sorts every unpublished row (60-80 ms a batch instead of under 1 ms).
  await sql.query("analyze order_events");
  const databases: Database[] = [];
  const buses: JetStreamBus[] = [];
  const relays: Relay[] = [];
  let published = 0;
  let batches = 0;
  let publishing = 0;
  let done!: () => void;
  const drained = new Promise<void>((resolve) => {
    done = resolve;
  });
  for (let i = 0; i < relayCount; i++) {
    const database = await openDatabase({ url, dataDir: ".data/bench" });
    const bus = new JetStreamBus({ url: natsUrl, prefix, logger });
    await bus.start();
    databases.push(database);
    buses.push(bus);
    // The time spent inside publish (acks awaited), beside the drain's: the rest is the relay's own and PostgreSQL's.
    const timed = Object.assign(Object.create(bus) as JetStreamBus, {
      async publish(batch: BusEvent[]) {
        const t = performance.now();
        try {
          return await bus.publish(batch);
        } finally {
          publishing += performance.now() - t;
        }
      },
    });
    relays.push(
      new Relay(database, timed, logger, {
        partitions,
        onPublished: (batch) => {
          batches++;
          published += batch.length;
          if (published >= events) done();
        },
      } as ConstructorParameters<typeof Relay>[3]),
    );
  }
  // The backlog's insert and the relays' start-up reported (see statsFlushMs).
  await new Promise((r) => setTimeout(r, statsFlushMs));
  await sql.query("select pg_stat_clear_snapshot()");
  const commits0 = await stats(sql, dbName);
  const t0 = performance.now();
  await Promise.all(relays.map((r) => r.start()));
  await drained;
  const took = performance.now() - t0;
  await new Promise((r) => setTimeout(r, statsFlushMs));
  await sql.query("select pg_stat_clear_snapshot()");
  const commits = (await stats(sql, dbName)) - commits0;
  for (const relay of relays) await relay.stop();
  for (const bus of buses) await bus.close();
  for (const database of databases) await database.close();
  const { rows } = await sql.query<{ disorder: number; unpublished: number }>(
    `select count(*) filter (where stream_seq < previous)::int as disorder,
            count(*) filter (where stream_seq is null)::int as unpublished
       from (select stream_seq, lag(stream_seq) over (partition by order_id order by seq) as previous
               from order_events) e`,
  );
  await sql.query("update order_events set published_at = coalesce(published_at, now())");
  await sql.end();
  return { took, batches, commits, publishing, ...rows[0]! };
}

const db = await createTestDatabase();
const prefix = testPrefix();
try {
  // Migrations applied once, before any clock runs.
  await (await openDatabase({ url: db.url, dataDir: ".data/bench" })).close();
  console.log(
    `relay drain of ${fmt(events)} outbox rows (${eventsPerOrder} per order, ${clustered ? "clustered" : "interleaved"}), ${relayCount} relay(s), ${cpus().length} cores`,
  );
  for (const k of partitionCounts) {
    const raw = await rawPublish(prefix);
    const r = await drain(db.url, db.name, prefix, k);
    console.log(
      `K=${k}: relay ${fmt(r.took)} ms (${fmt((events / r.took) * 1000)} events/s), ` +
        `raw js.publish ${fmt(raw)} ms (${fmt((events / raw) * 1000)} msgs/s), relay/raw ${(r.took / raw).toFixed(2)}; ` +
        `in publish ${fmt(r.publishing)} ms (summed over loops), batches ${r.batches}, commits ${r.commits}, out of order ${r.disorder}, unpublished ${r.unpublished}`,
    );
  }
} finally {
  const nc = await connect({ servers: natsUrl });
  await (await jetstreamManager(nc)).streams.delete(`${prefix}_events`).catch(() => {});
  await nc.close();
  await db.drop();
}
