import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import type { Bus, BusEvent, Publication } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { Relay } from "../src/relay/relay.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const logger = createLogger("silent");

/** The bus, with `after` run once a publish is acked and before its answers reach the relay. */
function stalling(bus: Bus, after: () => Promise<void>): Bus {
  return Object.assign(Object.create(bus) as Bus, {
    async publish(events: BusEvent[]): Promise<Publication[]> {
      const answers = await bus.publish(events);
      await after();
      return answers;
    },
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The bus, except that it refuses the events `refuse` picks, as JetStream does with a 503 during a leader election. */
function refusing(bus: Bus, refuse: (event: BusEvent) => boolean): Bus {
  return Object.assign(Object.create(bus) as Bus, {
    async publish(events: BusEvent[]): Promise<Publication[]> {
      const passing = events.filter((e) => !refuse(e));
      const answers = await bus.publish(passing);
      return events.map((e) =>
        refuse(e)
          ? { ok: false, error: new Error("503 no responders"), lasting: false }
          : answers[passing.indexOf(e)]!,
      );
    },
  });
}

describe("the relay under faults", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  let bus: JetStreamBus;
  let sql: pg.Client;
  const windowMs = 1_000;

  beforeAll(async () => {
    db = await createTestDatabase();
    database = await openDatabase({ url: db.url, dataDir: ".data/test" });
    bus = new JetStreamBus({ url: natsUrl, prefix, logger, duplicateWindowMs: windowMs });
    await bus.start();
    // A one-second duplicate window, so that a stall can outlast it.
    const nc = await connect({ servers: natsUrl });
    await (await jetstreamManager(nc)).streams.update(`${prefix}_events`, {
      duplicate_window: nanos(windowMs),
    });
    await nc.close();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  afterAll(async () => {
    await sql?.end();
    await bus?.close();
    await database?.close();
    await deleteStream(prefix);
    await db?.drop();
  });

  async function insert(orderId: string, type: string): Promise<string> {
    const id = randomUUID();
    await sql.query("insert into order_events (id, order_id, type, payload) values ($1, $2, $3, '{}')", [
      id,
      orderId,
      type,
    ]);
    return id;
  }

  /** Every message of the stream, in stream order. */
  async function stream(): Promise<BusEvent[]> {
    const nc = await connect({ servers: natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      const last = (await jsm.streams.info(`${prefix}_events`)).state.last_seq;
      const events: BusEvent[] = [];
      for (let seq = 1; seq <= last; seq++) {
        const msg = await jsm.streams.getMessage(`${prefix}_events`, { seq });
        if (msg) events.push(msg.json<BusEvent>());
      }
      return events;
    } finally {
      await nc.close();
    }
  }

  it("keeps each order's events in outbox order when one publish of a batch is refused", async () => {
    const x = randomUUID();
    const y = randomUUID();
    const a = await insert(x, "A");
    const b = await insert(x, "B");
    const c = await insert(y, "C");
    const d = await insert(y, "D");
    let refusals = 0;
    const relay = new Relay(
      database,
      refusing(bus, (e) => e.id === a && refusals++ === 0),
      logger,
      { pollMs: 100 },
    );
    await relay.start();
    try {
      await eventually(async () => (await stream()).length === 4, { what: "four events on the stream" });
    } finally {
      await relay.stop();
    }
    const stored = (await stream()).map((e) => e.id);
    expect(refusals).toBeGreaterThan(1);
    expect(stored.filter((id) => id === a || id === b)).toEqual([a, b]);
    expect(stored.filter((id) => id === c || id === d)).toEqual([c, d]);
  });

  /** Ends the relay's transaction from outside, as a database outage or the idle timeout would. */
  async function cutRelayConnections(): Promise<void> {
    await sql.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = current_database() and state = 'idle in transaction' and pid <> pg_backend_pid()`,
    );
  }

  /** Each of these events once on the stream, and each row marked with its position there. */
  async function expectOnceEach(ids: string[]): Promise<void> {
    const stored = await stream();
    for (const id of ids)
      expect(
        stored.filter((e) => e.id === id),
        id,
      ).toHaveLength(1);
    const { rows } = await sql.query<{ id: string; stream_seq: string | null }>(
      "select id, stream_seq from order_events where id = any($1)",
      [ids],
    );
    for (const row of rows) expect(Number(row.stream_seq)).toBe(stored.findIndex((e) => e.id === row.id) + 1);
  }

  async function allMarked(ids: string[]): Promise<boolean> {
    const { rows } = await sql.query(
      "select count(*)::int as n from order_events where id = any($1) and published_at is not null",
      [ids],
    );
    return rows[0].n === ids.length;
  }

  it("does not publish again what it saw acked when its marking failed and the duplicate window has passed", async () => {
    const x = randomUUID();
    const ids = [await insert(x, "A"), await insert(x, "B"), await insert(randomUUID(), "C")];
    let stalls = 0;
    const relay = new Relay(
      database,
      stalling(bus, async () => {
        if (stalls++ > 0) return;
        await cutRelayConnections();
        await sleep(windowMs * 1.5);
      }),
      logger,
      { pollMs: 100, duplicateWindowMs: windowMs },
    );
    await relay.start();
    try {
      await eventually(() => allMarked(ids), { what: "the rows marked published" });
    } finally {
      await relay.stop();
    }
    expect(stalls).toBeGreaterThan(0);
    await expectOnceEach(ids);
  });

  it("does not publish again what a relay that died before marking published before the duplicate window", async () => {
    const x = randomUUID();
    const y = randomUUID();
    const ids = [await insert(x, "A"), await insert(y, "C"), await insert(x, "B"), await insert(y, "D")];
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let published = 0;
    // The first relay publishes the first wave, then hangs for good: for the others it is dead.
    const dying = new Relay(
      database,
      stalling(bus, async () => {
        published++;
        await released;
      }),
      logger,
      { pollMs: 100_000, duplicateWindowMs: windowMs },
    );
    await dying.start();
    await eventually(() => published > 0, { what: "the first wave published" });
    await cutRelayConnections();
    await sleep(windowMs * 1.5);

    const relay = new Relay(database, bus, logger, { pollMs: 100, duplicateWindowMs: windowMs });
    await relay.start();
    try {
      await eventually(() => allMarked(ids), { what: "the rows marked published" });
    } finally {
      await relay.stop();
      release();
      await dying.stop();
    }
    await expectOnceEach(ids);
    const stored = (await stream()).map((e) => e.id);
    expect(stored.filter((id) => id === ids[0] || id === ids[2])).toEqual([ids[0], ids[2]]);
  });
});
