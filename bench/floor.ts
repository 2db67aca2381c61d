/**
 * The floor an order's path cannot beat, measured in the same run on the
 * same PostgreSQL and NATS: one committed transaction, and one JetStream
 * publish → durable-consumer delivery.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import pg from "pg";
import { type BenchEnv, now, summary } from "./support.ts";

export interface FloorSamples {
  /** BEGIN; INSERT; COMMIT on a scratch table. */
  pgTransaction: number[];
  /** One `select 1`: a single round trip. */
  pgRoundTrip: number[];
  /** Publish → delivery on a durable pull consumer (explicit ack), sequential. */
  jsDelivery: number[];
  /** Publish → the stream's PubAck (what the relay awaits inside its transaction). */
  jsPubAck: number[];
}

export async function measureFloor(env: BenchEnv, n: number, warmup = 5): Promise<FloorSamples> {
  const pgTransaction: number[] = [];
  const pgRoundTrip: number[] = [];
  const client = new pg.Client({ connectionString: env.databaseUrl });
  await client.connect();
  try {
    await client.query(
      "create table if not exists bench_scratch (id bigserial primary key, at timestamptz not null default now(), note text not null)",
    );
    for (let i = 0; i < n + warmup; i++) {
      const t0 = now();
      await client.query("begin");
      await client.query("insert into bench_scratch (note) values ($1)", [`sample ${i}`]);
      await client.query("commit");
      const t1 = now();
      await client.query("select 1");
      const t2 = now();
      if (i >= warmup) {
        pgTransaction.push(t1 - t0);
        pgRoundTrip.push(t2 - t1);
      }
    }
    await client.query("drop table bench_scratch");
  } finally {
    await client.end();
  }

  const jsDelivery: number[] = [];
  const jsPubAck: number[] = [];
  const stream = `${env.prefix}_floor`;
  env.extraStreams.push(stream);
  const jsm = await jetstreamManager(env.nc);
  const js = jetstream(env.nc);
  // As the service's stream: file storage, a duplicate window; as its listeners: durable, explicit ack.
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: StorageType.File });
  await jsm.consumers.add(stream, {
    durable_name: "floor",
    deliver_policy: DeliverPolicy.All,
    ack_policy: AckPolicy.Explicit,
  });
  const consumer = await js.consumers.get(stream, "floor");
  const messages = await consumer.consume({ max_messages: 4 });
  let delivered: (() => void) | undefined;
  const reading = (async () => {
    for await (const msg of messages) {
      msg.ack();
      delivered?.();
    }
  })();
  try {
    for (let i = 0; i < n + warmup; i++) {
      const arrived = new Promise<number>((resolve) => {
        delivered = () => resolve(now());
      });
      const t0 = now();
      const ack = js.publish(`${stream}.sample`, JSON.stringify({ i, at: Date.now() }), {
        msgID: `floor-${i}`,
      });
      const [deliveredAt, ackedAt] = await Promise.all([arrived, ack.then(() => now())]);
      if (i >= warmup) {
        jsDelivery.push(deliveredAt - t0);
        jsPubAck.push(ackedAt - t0);
      }
    }
  } finally {
    messages.stop();
    await reading;
    await jsm.streams.delete(stream).catch(() => {});
  }
  return { pgTransaction, pgRoundTrip, jsDelivery, jsPubAck };
}

export function floorSummary(samples: FloorSamples) {
  return {
    pgTransaction: summary(samples.pgTransaction),
    pgRoundTrip: summary(samples.pgRoundTrip),
    jsDelivery: summary(samples.jsDelivery),
    jsPubAck: summary(samples.jsPubAck),
  };
}
