import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/database.ts";
import type { Listener } from "../src/relay/listener.ts";
import { graphql } from "./generated/index.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { sagaClient } from "./support/saga.ts";
import {
  deleteStream,
  errorCode,
  gql,
  liveSubscriptions,
  startTestService,
  type TestService,
  tokens,
} from "./support/service.ts";
import { completedLifecycle, subscriber } from "./support/subscriber.ts";
import { eventually } from "./support/wait.ts";

const RepublishEvents = graphql(`
  mutation RepublishEvents($from: DateTime!, $to: DateTime!) {
    republishEvents(from: $from, to: $to)
  }
`);

const types = ["OrderPlaced", "OrderConfirmed", "OrderStateChanged", "InvoiceIssued", "InvoicePaid"];

/**
 * A broker that acknowledged events and then lost them (the stream purged),
 * and the admin's way back: republishEvents puts the outbox's events of a
 * range on the stream again. The gateway and relay run in one service, the
 * listeners in another, so the listeners can be away while events are lost.
 */
describe("republishing a range of outbox events after the broker lost them", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let front: TestService;
  let back: TestService | undefined;
  const mailDir = mkdtempSync(join(tmpdir(), "republish-"));
  /** handle() calls per listener and event: the handler runs only for an event its inbox did not know. */
  const handled = new Map<string, number>();
  const audit = (name: string): Listener => ({
    name,
    types,
    async handle(_tx, event) {
      const key = `${name} ${event.id}`;
      handled.set(key, (handled.get(key) ?? 0) + 1);
    },
  });
  const startListeners = async () => {
    back = await startTestService({
      databaseUrl: db.url,
      natsPrefix: prefix,
      roles: "orders,finance,logistics,travelium,subscription,notifier",
      listeners: [audit("audit-a"), audit("audit-b")],
      env: { DATA_DIR: mailDir },
    });
  };
  /** Every durable consumer has had and acknowledged all there is: no copy of anything is on its way. */
  const consumersDone = async () => {
    const nc = await connect({ servers: natsUrl });
    try {
      for await (const c of (await jetstreamManager(nc)).consumers.list(`${prefix}_events`))
        if (c.num_pending > 0 || c.num_ack_pending > 0) return false;
      return true;
    } finally {
      await nc.close();
    }
  };
  const sql1 = <T>(text: ReturnType<typeof sql>) => query<T>(front.service.database.db, text);

  beforeAll(async () => {
    db = await createTestDatabase();
    front = await startTestService({ databaseUrl: db.url, natsPrefix: prefix, roles: "gateway,relay" });
    await startListeners();
  });
  afterAll(async () => {
    await back?.stop();
    await front?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("has every listener handle each lost event once, completes the orders, and sends no subscriber a change twice", async () => {
    const saga = sagaClient(front.url!);
    const watcher = subscriber(front.url!, await tokens.admin());
    await liveSubscriptions(front.url!);
    const from = new Date(Date.now() - 1_000);

    // Completed before the loss: their events are republished too, and must change nothing.
    const before = await Promise.all(Array.from({ length: 8 }, () => saga.placeAndConfirm(["EBOOK-1"])));
    for (const order of before) await saga.until(order.id, { status: "COMPLETED" });

    // The listeners are away; the broker acknowledges the next orders' events and then loses them.
    await back!.stop();
    back = undefined;
    const lost = await Promise.all(Array.from({ length: 8 }, () => saga.placeAndConfirm(["EBOOK-1"])));
    await eventually(
      async () =>
        (
          await sql1<{ n: number }>(
            sql`select count(*)::int as n from order_events where published_at is null`,
          )
        )[0]!.n === 0,
      { what: "the relay to publish every event" },
    );
    const nc = await connect({ servers: natsUrl });
    await (await jetstreamManager(nc)).streams.purge(`${prefix}_events`);
    await nc.close();

    await startListeners();
    // Nothing of theirs reaches the listeners now: the stream holds none of it.
    for (const order of lost) expect((await saga.read(order.id)).status).toBe("CONFIRMED");
    const [{ n: published } = { n: -1 }] = await sql1<{ n: number }>(
      sql`select count(*)::int as n from order_events where occurred_at >= ${from.toISOString()}::timestamptz`,
    );
    const answer = await gql(
      front.url!,
      RepublishEvents,
      { from: from.toISOString(), to: new Date().toISOString() },
      await tokens.admin(),
    );
    expect(answer.errors).toBeUndefined();
    expect(answer.data?.republishEvents).toBe(published);

    for (const order of lost) await saga.until(order.id, { status: "COMPLETED" }, `${order.id} completed`);
    await eventually(
      async () =>
        (
          await sql1<{ n: number }>(
            sql`select count(*)::int as n from order_events where published_at is null`,
          )
        )[0]!.n === 0 &&
        (
          await sql1<{ n: number }>(sql`select count(*)::int as n from notifications where status = 'sent'`)
        )[0]!.n ===
          2 * (before.length + lost.length) &&
        (await consumersDone()),
      { what: "the outbox, the mail and every consumer to drain", timeoutMs: 30_000 },
    );

    const all = [...before, ...lost];
    const events = await sql1<{ id: string; order_id: string; type: string }>(
      sql`select id, order_id, type from order_events order by seq`,
    );
    // Each listener handled each event of its types exactly once, through the loss and the republish.
    for (const name of ["audit-a", "audit-b"])
      for (const event of events) expect(handled.get(`${name} ${event.id}`), `${name} ${event.type}`).toBe(1);
    // The aggregate and Finance did their work once: one lifecycle, one invoice, per order.
    for (const order of all) {
      const changes = events.filter((e) => e.order_id === order.id && e.type === "OrderStateChanged");
      expect(changes).toHaveLength(4);
    }
    const invoices = await sql1<{ order_id: string; invoice_number: string }>(
      sql`select order_id, invoice_number from finance_invoices`,
    );
    expect(invoices.map((r) => r.order_id).sort()).toEqual(all.map((o) => o.id).sort());
    expect(new Set(invoices.map((r) => r.invoice_number)).size).toBe(all.length);
    const [{ last } = { last: -1 }] = await sql1<{ last: number }>(
      sql`select last from finance_invoice_counter`,
    );
    expect(last).toBe(all.length);
    // Two emails per order, each sent once.
    expect(readdirSync(join(mailDir, "mail")).filter((f) => f.endsWith(".eml"))).toHaveLength(2 * all.length);
    const notes = await sql1<{ n: number }>(
      sql`select count(*)::int as n from notifications where status = 'sent'`,
    );
    expect(notes[0]!.n).toBe(2 * all.length);

    // The subscriber saw each change once, in order: the republished copies were not sent again.
    await eventually(() => all.every((o) => watcher.of(o.id).length === 4), { what: "every change" });
    for (const order of all) expect(watcher.of(order.id)).toEqual(completedLifecycle);
    expect(new Set(watcher.changes.map((c) => c.eventId)).size).toBe(watcher.changes.length);
    watcher.close();
  });

  it("refuses a range past the deduplication horizon, or empty, and republishes nothing", async () => {
    const admin = await tokens.admin();
    const unpublished = async () =>
      (
        await sql1<{ n: number }>(
          sql`select count(*)::int as n from order_events where published_at is null or replays > 1`,
        )
      )[0]!.n;
    const old = await gql(
      front.url!,
      RepublishEvents,
      { from: new Date(Date.now() - 30 * 24 * 3_600_000).toISOString(), to: new Date().toISOString() },
      admin,
    );
    expect(errorCode(old)).toBe("BAD_USER_INPUT");
    expect(old.errors?.[0]?.message).toMatch(/deduplication horizon/);
    const backwards = await gql(
      front.url!,
      RepublishEvents,
      { from: new Date().toISOString(), to: new Date(Date.now() - 60_000).toISOString() },
      admin,
    );
    expect(errorCode(backwards)).toBe("BAD_USER_INPUT");
    const customer = await gql(
      front.url!,
      RepublishEvents,
      { from: new Date(Date.now() - 60_000).toISOString(), to: new Date().toISOString() },
      await tokens.customer(),
    );
    expect(errorCode(customer)).toBe("FORBIDDEN");
    expect(await unpublished()).toBe(0);
  });
});
