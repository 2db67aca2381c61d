import { randomUUID } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import type { Consumption } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { enqueue } from "../src/relay/outbox.ts";
import { Relay } from "../src/relay/relay.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const logger = createLogger("silent");

describe("the outbox relay", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const databases: Database[] = [];
  const relays: Relay[] = [];
  const buses: JetStreamBus[] = [];
  let consumption: Consumption;
  const received: string[] = [];
  const sequences = new Map<string, number>();

  async function startRelay(): Promise<Relay> {
    const database = await openDatabase({ url: db.url, dataDir: ".data/test" });
    const bus = new JetStreamBus({ url: natsUrl, prefix, logger });
    await bus.start();
    const relay = new Relay(database, bus, logger, { pollMs: 100, batchSize: 25 });
    await relay.start();
    databases.push(database);
    buses.push(bus);
    relays.push(relay);
    return relay;
  }

  /** A transaction that has written one outbox row and not committed yet. */
  async function openTransaction(): Promise<{
    id: string;
    seq: number;
    commit(): Promise<void>;
    rollback(): Promise<void>;
  }> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query("begin");
    const id = randomUUID();
    const { rows } = await client.query<{ seq: string }>(
      `insert into order_events (id, order_id, type, payload) values ($1, $2, 'Probe', '{}') returning seq`,
      [id, randomUUID()],
    );
    await client.query("select pg_notify('order_events', '')");
    const end = async (sql: string) => {
      await client.query(sql);
      await client.end();
    };
    return { id, seq: Number(rows[0]!.seq), commit: () => end("commit"), rollback: () => end("rollback") };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await startRelay();
    consumption = await buses[0]!.consume({
      name: "probe",
      concurrency: 8,
      handle: async ({ event, sequence }) => {
        received.push(event.id);
        sequences.set(event.id, sequence);
        return { kind: "done" };
      },
    });
  });

  afterAll(async () => {
    await consumption?.stop();
    for (const relay of relays) await relay.stop();
    for (const bus of buses) await bus.close();
    for (const database of databases) await database.close();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("writes a transaction's events to the outbox in the order given, with their payloads as given", async () => {
    const database = await openDatabase({ url: db.url, dataDir: ".data/test" });
    databases.push(database);
    const orderId = randomUUID();
    const events = Array.from({ length: 40 }, (_, i) => ({
      type: `Step${i}`,
      orderId,
      payload: { i, text: `it's "quoted" \\ {braced}`, nested: { list: [i, null] } },
    }));
    const enqueued = await database.db.transaction((tx) => enqueue(tx, events));
    const rows = await database.db
      .select({ id: orderEvents.id, type: orderEvents.type, payload: orderEvents.payload })
      .from(orderEvents)
      .where(eq(orderEvents.orderId, orderId))
      .orderBy(asc(orderEvents.seq));
    expect(rows).toEqual(enqueued.map(({ id, type, payload }) => ({ id, type, payload })));
  });

  it("publishes a row that a slow transaction commits after a newer one, and never a rolled-back one", async () => {
    const slow = await openTransaction();
    const fast = await openTransaction();
    const rolledBack = await openTransaction();
    expect(slow.seq).toBeLessThan(fast.seq);

    await fast.commit();
    await eventually(() => received.includes(fast.id), { what: "the newer row on the bus" });
    expect(received).not.toContain(slow.id);

    await slow.commit();
    await rolledBack.rollback();
    await eventually(() => received.includes(slow.id), { what: "the row committed late" });

    // Once the outbox is drained, the rolled-back row has had every chance to appear.
    const check = new pg.Client({ connectionString: db.url });
    await check.connect();
    await eventually(async () => {
      const { rows } = await check.query(
        "select count(*)::int as n from order_events where published_at is null",
      );
      return rows[0].n === 0;
    });
    await check.end();
    expect(received).not.toContain(rolledBack.id);
  });

  it("publishes every row exactly once while several relays run", async () => {
    await startRelay();
    await startRelay();
    const writers = Array.from({ length: 8 }, async () => {
      const ids: string[] = [];
      for (let i = 0; i < 15; i++) {
        const tx = await openTransaction();
        ids.push(tx.id);
        await tx.commit();
      }
      return ids;
    });
    const ids = (await Promise.all(writers)).flat();
    await eventually(() => ids.every((id) => received.includes(id)), { what: "all 120 events" });
    // A moment for any duplicate to show up, then count: each id once.
    await new Promise((r) => setTimeout(r, 300));
    for (const id of ids) expect(received.filter((r) => r === id)).toHaveLength(1);

    // Each row remembers where it sits in the stream: resumable subscriptions start from there.
    const check = new pg.Client({ connectionString: db.url });
    await check.connect();
    const { rows } = await check.query<{ id: string; stream_seq: string }>(
      "select id, stream_seq from order_events where id = any($1)",
      [ids],
    );
    await check.end();
    expect(rows).toHaveLength(ids.length);
    for (const row of rows) expect(Number(row.stream_seq)).toBe(sequences.get(row.id));
  });
});

/** A database and a JetStream bus of the test's own, for a relay built on them; `close` removes them. */
async function ownDatabaseAndBus() {
  const db = await createTestDatabase();
  const prefix = testPrefix();
  const database = await openDatabase({ url: db.url, dataDir: ".data/test" });
  const bus = new JetStreamBus({ url: natsUrl, prefix, logger });
  await bus.start();
  return {
    db,
    database,
    bus,
    async close() {
      await bus.close();
      await database.close();
      await deleteStream(prefix);
      await db.drop();
    },
  };
}

describe("a relay woken by a commit", () => {
  it("publishes what the commit wrote in one transaction, with no empty round after it", async () => {
    const { database, bus, close } = await ownDatabaseAndBus();
    let transactions = 0;
    const counted = new Proxy(database.db, {
      get(target, property, receiver) {
        if (property !== "transaction") return Reflect.get(target, property, receiver);
        return (...args: Parameters<typeof target.transaction>) => {
          transactions++;
          return target.transaction(...args);
        };
      },
    });
    // Polls far apart: only the start and the NOTIFY wake it.
    const relay = new Relay({ ...database, db: counted }, bus, logger, { pollMs: 60_000 });
    try {
      await relay.start();
      await eventually(() => transactions === 1, { what: "the first look at the outbox" });
      const orderId = randomUUID();
      await database.db.transaction((tx) =>
        enqueue(
          tx,
          [1, 2, 3].map((i) => ({ type: `Step${i}`, orderId, payload: {} })),
        ),
      );
      await eventually(
        async () => {
          const rows = await database.db.select().from(orderEvents).where(eq(orderEvents.orderId, orderId));
          return rows.every((r) => r.publishedAt !== null);
        },
        { what: "the three events published" },
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(transactions).toBe(2);
    } finally {
      await relay.stop();
      await close();
    }
  });
});

describe("a relay told which rows a commit wrote", () => {
  it("looks them up by seq, and holds one back behind an earlier row of its order that no NOTIFY listed", async () => {
    const { db, database, bus, close } = await ownDatabaseAndBus();
    const received: string[] = [];
    const consumption = await bus.consume({
      name: "probe",
      concurrency: 1,
      handle: async ({ event }) => {
        received.push(event.id);
        return { kind: "done" };
      },
    });
    // Polls far apart: after its first scan the relay learns of rows only from the NOTIFYs' lists.
    const relay = new Relay(database, bus, logger, { pollMs: 60_000 });
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    const insert = async (orderId: string) => {
      const id = randomUUID();
      await writer.query(
        `insert into order_events (id, order_id, type, payload) values ($1, $2, 'Probe', '{}')`,
        [id, orderId],
      );
      return id;
    };
    try {
      await relay.start();
      // The start's scan is over once a row written after it has gone out: from then on, only NOTIFYs.
      const first = await insert(randomUUID());
      await eventually(() => received.includes(first), { what: "a row written after the start" });
      const order = randomUUID();
      // Written with triggers off: the NOTIFY that would list it never comes.
      await writer.query("set session_replication_role = replica");
      const unlisted = await insert(order);
      await writer.query("set session_replication_role = origin");
      const behind = await insert(order);
      const other = await insert(randomUUID());

      await eventually(() => received.includes(other), { what: "the other order's row, from its NOTIFY" });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received).not.toContain(unlisted);
      expect(received).not.toContain(behind);

      // A scan (the poll's) finds the unlisted row, and its order goes out in order.
      relay.wake();
      await eventually(() => received.includes(behind), { what: "the order's two rows" });
      expect(received.filter((id) => id === unlisted || id === behind)).toEqual([unlisted, behind]);
    } finally {
      await writer.end();
      await relay.stop();
      await consumption.stop();
      await close();
    }
  });
});
