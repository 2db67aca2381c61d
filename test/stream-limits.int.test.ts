import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/database.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { sagaClient } from "./support/saga.ts";
import { deleteStream, startTestService, type TestService, tokens } from "./support/service.ts";
import { subscriber } from "./support/subscriber.ts";
import { eventually } from "./support/wait.ts";

const hour = 3_600_000;

/**
 * The stream's limits come from the configuration, also on a stream that
 * exists with others; a resume from a position they removed says so.
 */
describe("the stream's limits", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService;

  beforeAll(async () => {
    db = await createTestDatabase();
    // An older version's stream: no age limit, no size limit.
    const nc = await connect({ servers: natsUrl });
    await (await jetstreamManager(nc)).streams.add({
      name: `${prefix}_events`,
      subjects: [`${prefix}.events.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(120_000),
    });
    await nc.close();
    app = await startTestService({
      databaseUrl: db.url,
      natsPrefix: prefix,
      env: { NATS_MAX_AGE_HOURS: "48", NATS_MAX_BYTES: "50000000", INBOX_RETENTION_HOURS: "72" },
    });
  });
  afterAll(async () => {
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("brings an existing stream to the configured max age and size, one replica", async () => {
    const nc = await connect({ servers: natsUrl });
    const { config } = await (await jetstreamManager(nc)).streams.info(`${prefix}_events`);
    await nc.close();
    expect(config.max_age).toBe(nanos(48 * hour));
    expect(config.max_bytes).toBe(50_000_000);
    expect(config.num_replicas).toBe(1);
  });

  it("answers a resume after a change the stream has removed with BAD_USER_INPUT naming its retention", async () => {
    const saga = sagaClient(app.url!);
    const first = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(first.id, { status: "COMPLETED" });
    const second = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(second.id, { status: "COMPLETED" });
    const events = await query<{ id: string; stream_seq: number }>(
      app.service.database.db,
      sql`select id, stream_seq from order_events where order_id = ${first.id} and type = 'OrderStateChanged' order by seq`,
    );
    const secondPlaced = await query<{ stream_seq: number }>(
      app.service.database.db,
      sql`select min(stream_seq)::int as stream_seq from order_events where order_id = ${second.id}`,
    );
    // What the age limit does to old events: everything before the second order is gone.
    const nc = await connect({ servers: natsUrl });
    await (await jetstreamManager(nc)).streams.purge(`${prefix}_events`, {
      seq: secondPlaced[0]!.stream_seq,
    });
    await nc.close();

    const customer = await tokens.customer();
    const old = subscriber(app.url!, customer, { after: events[0]!.id });
    await eventually(() => old.failure() !== undefined, { what: "the refusal" });
    expect(JSON.stringify(old.failure())).toContain("BAD_USER_INPUT");
    expect(JSON.stringify(old.failure())).toMatch(/older than the event stream keeps/);
    expect(old.changes).toEqual([]);
    old.close();

    // A position the stream still holds resumes as ever.
    const placedChange = await query<{ id: string }>(
      app.service.database.db,
      sql`select id from order_events where order_id = ${second.id} and type = 'OrderStateChanged' order by seq limit 1`,
    );
    const recent = subscriber(app.url!, customer, { after: placedChange[0]!.id });
    await eventually(() => recent.changes.length === 3, { what: "the second order's later changes" });
    expect(recent.changes.map((c) => c.to)).toEqual(["CONFIRMED", "FULFILLING", "COMPLETED"]);
    expect(recent.failure()).toBeUndefined();
    recent.close();
  });
});
