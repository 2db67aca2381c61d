import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
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

describe("the relay under a refused publish", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  let bus: JetStreamBus;
  let sql: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    database = await openDatabase({ url: db.url, dataDir: ".data/test" });
    bus = new JetStreamBus({ url: natsUrl, prefix, logger });
    await bus.start();
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
});
