import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import type { Bus, BusEvent, Publication } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { Relay } from "../src/relay/relay.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const logger = createLogger("silent");

describe("relay partitions", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: pg.Client;
  let running: { relay: Relay; bus: JetStreamBus; database: Database }[] = [];

  async function startRelay(partitions: number, name = "relay", wrap = (bus: Bus) => bus) {
    const url = new URL(db.url);
    url.searchParams.set("application_name", name);
    const database = await openDatabase({ url: url.toString(), dataDir: ".data/test" });
    const bus = new JetStreamBus({ url: natsUrl, prefix, logger });
    await bus.start();
    const relay = new Relay(database, wrap(bus), logger, { pollMs: 100, batchSize: 25, partitions });
    await relay.start();
    const started = { relay, bus, database };
    running.push(started);
    return started;
  }

  /**
   * Events of `orders` orders, `perOrder` each, two per transaction, the
   * orders' transactions concurrent (a few connections, as a gateway's pool).
   */
  async function write(orders: number, perOrder: number): Promise<void> {
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    const writeOrder = async (orderId: string) => {
      for (let n = 0; n < perOrder; n += 2) {
        const client = await pool.connect();
        try {
          await client.query("begin");
          for (const k of [n, n + 1].filter((k) => k < perOrder))
            await client.query(
              "insert into order_events (id, order_id, type, payload) values ($1, $2, 'Probe', $3)",
              [randomUUID(), orderId, { n: k }],
            );
          await client.query("select pg_notify('order_events', '')");
          await client.query("commit");
        } finally {
          client.release();
        }
      }
    };
    await Promise.all(Array.from({ length: orders }, () => writeOrder(randomUUID())));
    await pool.end();
  }

  async function unpublished(): Promise<number> {
    const { rows } = await sql.query(
      "select count(*)::int as n from order_events where published_at is null",
    );
    return rows[0].n;
  }

  /**
   * Every row is in the stream once (the stream holds as many messages as the
   * outbox rows, each Nats-Msg-Id once by JetStream's deduplication and the
   * count equal), and each order's events sit in the stream in outbox order.
   */
  async function expectOnceEachInOrder(): Promise<void> {
    await eventually(async () => (await unpublished()) === 0, {
      what: "every row published",
      timeoutMs: 60_000,
    });
    const { rows } = await sql.query<{ n: number; disorder: number; positions: number }>(
      `select count(*)::int as n,
              count(*) filter (where stream_seq <= previous)::int as disorder,
              count(distinct stream_seq)::int as positions
         from (select stream_seq, lag(stream_seq) over (partition by order_id order by seq) as previous
                 from order_events) e`,
    );
    const nc = await connect({ servers: natsUrl });
    const info = await (await jetstreamManager(nc)).streams.info(`${prefix}_events`);
    await nc.close();
    expect(rows[0]!.disorder).toBe(0);
    expect(rows[0]!.positions).toBe(rows[0]!.n);
    expect(info.state.messages).toBe(rows[0]!.n);
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    // Migrations, before several relays start at once.
    await (await openDatabase({ url: db.url, dataDir: ".data/test" })).close();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  afterEach(async () => {
    for (const { relay, bus, database } of running) {
      await relay.stop();
      await bus.close();
      await database.close();
    }
    running = [];
  });

  afterAll(async () => {
    await sql?.end();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("with three partitions and three relays, publishes every row once and each order in order", async () => {
    for (let i = 0; i < 3; i++) await startRelay(3);
    await write(60, 8);
    await expectOnceEachInOrder();
  });

  it("keeps each order in order while relays with different partition counts run at once (a deploy changing K)", async () => {
    await startRelay(1);
    await startRelay(2);
    await startRelay(3);
    await write(60, 8);
    await expectOnceEachInOrder();
  });

  it("lets the other relays take the partitions of one that dies mid-batch", async () => {
    let dead = false;
    let forever!: () => void;
    const never = new Promise<void>((resolve) => {
      forever = resolve;
    });
    // Once dead, each of its partitions hangs in its publish, acked or not, and never marks: as a process killed there.
    const dying = (bus: Bus): Bus =>
      Object.assign(Object.create(bus) as Bus, {
        async publish(events: BusEvent[]): Promise<Publication[]> {
          const answers = await bus.publish(events);
          if (dead) await never;
          return answers;
        },
      });
    await startRelay(2, "dying", dying);
    try {
      await startRelay(2, "survivor-1");
      await startRelay(3, "survivor-2");
      const writing = write(80, 10);
      await eventually(async () => (await unpublished()) < 700, { what: "publishing under way" });
      dead = true;
      // Its sessions end with the process, and their transactions and slot locks with them.
      await eventually(
        async () => {
          const { rows } = await sql.query(
            `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
              where datname = current_database() and application_name = 'dying' and state = 'idle in transaction'`,
          );
          return rows[0].n > 0;
        },
        { what: "the dying relay caught inside a batch" },
      );
      await writing;
      await expectOnceEachInOrder();
    } finally {
      // Lets the dead relay's hung publishes return, so that afterEach can stop it.
      forever();
    }
  });
});
