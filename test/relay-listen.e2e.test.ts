import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { Relay } from "../src/relay/relay.ts";
import { natsUrl, testPrefix } from "./support/database.ts";
import { startPrivatePostgres } from "./support/private-postgres.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const logger = createLogger("silent");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the relay's LISTEN across a PostgreSQL restart", { timeout: 120_000 }, () => {
  const prefix = testPrefix();
  let postgres: Awaited<ReturnType<typeof startPrivatePostgres>>;
  let database: Database;
  let bus: JetStreamBus;
  let relay: Relay;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    database = await openDatabase({ url: postgres.url, dataDir: ".data/test" });
    bus = new JetStreamBus({ url: natsUrl, prefix, logger });
    await bus.start();
    // The default one-second poll: a hop slower than a NOTIFY shows the poll is doing the work.
    relay = new Relay(database, bus, logger);
    await relay.start();
  }, 60_000);

  afterAll(async () => {
    try {
      await relay?.stop();
      await bus?.close();
      await database?.close();
      await deleteStream(prefix);
    } finally {
      // Whatever failed above, the private cluster goes.
      await postgres?.stop();
    }
  });

  /** Commit to publication of one outbox row, in ms: a NOTIFY wakes the relay at once, the poll within 1 s. */
  async function hop(): Promise<number> {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      const id = randomUUID();
      await client.query("begin");
      await client.query(
        "insert into order_events (id, order_id, type, payload) values ($1, $2, 'Probe', '{}')",
        [id, randomUUID()],
      );
      await client.query("select pg_notify('order_events', '')");
      await client.query("commit");
      const committedAt = Date.now();
      await eventually(
        async () => {
          const { rows } = await client.query("select published_at from order_events where id = $1", [id]);
          return rows[0]?.published_at !== null;
        },
        { intervalMs: 5, what: "the row published" },
      );
      return Date.now() - committedAt;
    } finally {
      await client.end();
    }
  }

  async function hops(n: number): Promise<number[]> {
    const lags: number[] = [];
    for (let i = 0; i < n; i++) {
      lags.push(await hop());
      // A pause between hops, as between orders.
      await sleep(137);
    }
    return lags;
  }

  it("is back after a restart under load: hops take NOTIFY time again, not the poll's", async () => {
    const before = await hops(8);
    expect(Math.max(...before), `before: ${before}`).toBeLessThan(300);

    // Load while it goes down and comes back: writers that retry until the database answers again.
    let writing = true;
    const load = (async () => {
      while (writing) {
        const client = new pg.Client({ connectionString: postgres.url });
        // The restart ends an idle connection with an error event: a writer shrugs it off like a refusal.
        client.on("error", () => {});
        try {
          await client.connect();
          await client.query(
            "insert into order_events (id, order_id, type, payload) values ($1, $2, 'Load', '{}')",
            [randomUUID(), randomUUID()],
          );
        } catch {
          await sleep(50);
        } finally {
          await client.end().catch(() => {});
        }
      }
    })();
    await sleep(300);
    await postgres.restart(1_000);
    // Its back-off after a second down: the LISTEN connection is open again within a few seconds.
    await sleep(5_000);
    writing = false;
    await load;

    const after = await hops(12);
    expect(Math.max(...after), `after: ${after}`).toBeLessThan(300);
  });
});
