import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase, query } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import { republishUnhandled } from "../src/relay/recover.ts";
import { RetentionSweep } from "../src/statemachine/retention.ts";
import { createTestDatabase } from "./support/database.ts";

const hour = 3_600_000;
const retentionMs = 336 * hour;
const now = new Date("2026-12-01T12:00:00Z");
const ago = (hours: number) => new Date(now.getTime() - hours * hour).toISOString();

/**
 * The retention sweep on a database whose rows are dated by hand around the
 * horizon (14 days): what it deletes, what it keeps, in batches smaller
 * than what there is to delete.
 */
describe("the retention sweep", () => {
  let test: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  const orders = {
    completedLongAgo: randomUUID(),
    cancelledLongAgo: randomUUID(),
    pendingLongAgo: randomUUID(),
    completedLately: randomUUID(),
  };
  const run = <T>(statement: ReturnType<typeof sql>) => query<T>(database.db, statement);

  beforeAll(async () => {
    test = await createTestDatabase();
    database = await openDatabase({ url: test.url, dataDir: "unused" });
    const place = async (id: string, status: string, updatedHoursAgo: number) => {
      await run(sql`insert into sales_orders (id, status, customer_id, contact_email, total_amount, currency,
          required_modules, involved_modules, idempotency_key, request_hash, placed_event_id, created_at, updated_at)
        values (${id}, ${status}, 'c1', 'ada@example.com', 1299, 'EUR', '{finance}', '{finance}', ${id}, 'h',
          ${randomUUID()}, ${ago(updatedHoursAgo + 1)}::timestamptz, ${ago(updatedHoursAgo)}::timestamptz)`);
      // Its timeline: three events, handled by two consumers when they occurred.
      for (let i = 0; i < 3; i++) {
        const eventId = randomUUID();
        await run(sql`insert into order_events (id, order_id, type, payload, occurred_at, published_at)
          values (${eventId}, ${id}, 'OrderStateChanged', '{}'::jsonb, ${ago(updatedHoursAgo)}::timestamptz,
            ${ago(updatedHoursAgo)}::timestamptz)`);
        for (const consumer of ["orders", "finance"])
          await run(sql`insert into processed_events (consumer, event_id, processed_at)
            values (${consumer}, ${eventId}, ${ago(updatedHoursAgo)}::timestamptz)`);
      }
      for (const note of ["cancelled", "invoice-paid"])
        await run(sql`insert into module_notes (module, order_id, note, noted_at)
          values ('logistics', ${id}, ${note}, ${ago(updatedHoursAgo)}::timestamptz)`);
    };
    await place(orders.completedLongAgo, "completed", 400);
    await place(orders.cancelledLongAgo, "cancelled", 500);
    await place(orders.pendingLongAgo, "pending", 400);
    await place(orders.completedLately, "completed", 300);
  });
  afterAll(async () => {
    await database?.close();
    await test?.drop();
  });

  it("deletes inbox rows past the horizon and the notes of orders finished before it, in batches, and keeps every timeline", async () => {
    const timelines = await run<{ n: number }>(sql`select count(*)::int as n from order_events`);
    const sweep = new RetentionSweep({
      db: database.db,
      logger: createLogger("silent"),
      inboxRetentionMs: retentionMs,
      batchSize: 4,
    });

    // 3 orders' inbox rows are older than 336 h: 3 events × 2 consumers each.
    expect(await sweep.sweep(now)).toEqual({ inbox: 18, notes: 4 });

    const inbox = await run<{ order_id: string; n: number }>(sql`select e.order_id, count(*)::int as n
      from processed_events p join order_events e on e.id = p.event_id group by e.order_id`);
    expect(inbox).toEqual([{ order_id: orders.completedLately, n: 6 }]);
    const notes = await run<{ order_id: string }>(
      sql`select distinct order_id from module_notes order by order_id`,
    );
    // A pending order may still be confirmed and need what its modules noted; a recent one may still hear events.
    expect(notes.map((n) => n.order_id).sort()).toEqual(
      [orders.pendingLongAgo, orders.completedLately].sort(),
    );
    expect(await run(sql`select count(*)::int as n from order_events`)).toEqual(timelines);
    expect(await run(sql`select count(*)::int as n from sales_orders`)).toEqual([{ n: 4 }]);

    // A second pass finds nothing more.
    expect(await sweep.sweep(now)).toEqual({ inbox: 0, notes: 0 });
  });

  it("leaves the events before the horizon alone when an embedded bus hands unhandled events on after a restart", async () => {
    const listeners = [{ name: "orders", types: ["OrderStateChanged"], handle: async () => {} }];
    // Their inbox rows are gone, but they were handled long ago: only events since the horizon are looked at.
    const horizon = new Date(Date.now() - retentionMs);
    expect(await republishUnhandled(database.db, listeners, horizon)).toBe(0);
    expect(await run(sql`select count(*)::int as n from order_events where published_at is null`)).toEqual([
      { n: 0 },
    ]);
  });
});
