import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asc, getTableColumns } from "drizzle-orm";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { statementsOf } from "../src/db/deferred-begin.ts";
import { finance } from "../src/modules/finance/index.ts";
import { modules } from "../src/modules/index.ts";
import type { BusEvent } from "../src/relay/bus.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { moduleListener } from "../src/statemachine/module-listener.ts";
import { moduleNotes } from "../src/statemachine/tables.ts";
import { createTestDatabase } from "./support/database.ts";

/** Every statement this process's pg clients send while `counting` is on, BEGIN and COMMIT left out. */
const sent: string[] = [];
let counting = false;
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0];
  const text = typeof first === "string" ? first : (first as { text?: string } | undefined)?.text;
  // BEGIN and COMMIT go with a transaction's statements (src/db/deferred-begin.ts): count the statements.
  for (const statement of text ? statementsOf(this, text) : [])
    if (counting && !/^\s*(begin|commit|rollback)\s*;?\s*$/i.test(statement)) sent.push(statement);
  return query.apply(this, args);
};

function event(type: string, orderId: string, payload: Record<string, unknown>): BusEvent {
  return { id: randomUUID(), type, orderId, occurredAt: new Date().toISOString(), payload };
}
type Kind = "digital" | "physical" | "travel" | "subscription";
const confirmed = (orderId: string, ...kinds: Kind[]) =>
  event("OrderConfirmed", orderId, {
    paymentReference: `psp-${orderId}`,
    amount: 1299,
    currency: "EUR",
    lines: kinds.map((kind, i) => ({ sku: `${kind}-${i}`, kind, quantity: 1 })),
    involvedModules: modules
      .filter((m) =>
        m.involvedIn({ orderId, lines: kinds.map((kind) => ({ sku: kind, kind, quantity: 1 })) }),
      )
      .map((m) => m.name),
  });
const cancelled = (orderId: string) => event("OrderCancelled", orderId, { reason: "no", from: "confirmed" });
const reported = (type: "ShipmentReported" | "BookingReported", orderId: string, state: string) =>
  event(type, orderId, { state, idempotencyKey: randomUUID(), reportedBy: "partner" });
const invoicePaid = (orderId: string) =>
  event("InvoicePaid", orderId, {
    module: "finance",
    state: "paid",
    from: "issued",
    version: 2,
    cause: randomUUID(),
    involvedModules: ["finance", "subscription"],
  });

/** Each module's listener on the events it hears: the whole batch in one transaction, or one by one. */
async function handle(open: Database, events: BusEvent[], { oneByOne = false } = {}): Promise<void> {
  for (const module of modules) {
    const listener = moduleListener(module);
    const heard = events.filter((e) => listener.types.includes(e.type));
    const batches = oneByOne ? heard.map((e) => [e]) : heard.length > 0 ? [heard] : [];
    for (const batch of batches) await open.db.transaction((tx) => listener.handleBatch(tx, batch));
  }
}

/** What the modules wrote, comparable across databases: rows and notes by order, events in outbox order. */
async function written(open: Database, ids: Record<string, string>) {
  const name = new Map(Object.entries(ids).map(([k, id]) => [id, k]));
  const rows: Record<string, unknown[]> = {};
  for (const module of modules) {
    const { createdAt, updatedAt, ...columns } = getTableColumns(module.table);
    const found = await open.db.select(columns).from(module.table);
    rows[module.name] = found
      .map((row) => ({ ...row, orderId: name.get(row.orderId as string) }))
      .sort((a, b) => String(a.orderId).localeCompare(String(b.orderId)));
  }
  const notes = (await open.db.select().from(moduleNotes))
    .map((n) => `${n.module} ${name.get(n.orderId)} ${n.note}`)
    .sort();
  const events = (await open.db.select().from(orderEvents).orderBy(asc(orderEvents.seq))).map((e) => {
    const { invoice, ...payload } = e.payload as { invoice?: Record<string, unknown> };
    // The invoice's date is the row's creation: the one thing two runs do not share.
    const facts = invoice ? { invoice: { ...invoice, issuedAt: typeof invoice.issuedAt } } : {};
    return { type: e.type, order: name.get(e.orderId), ...payload, ...facts };
  });
  return { rows, notes, events };
}

describe("a module listener's batch", () => {
  const closing: (() => Promise<void>)[] = [];
  const postgres = async () => {
    const database = await createTestDatabase();
    const open = await openDatabase({ url: database.url, dataDir: ".data/test" });
    closing.push(
      () => database.drop(),
      () => open.close(),
    );
    return open;
  };
  afterAll(async () => {
    for (const close of closing.reverse()) await close();
  });

  it("costs Finance the same few statements for 1, 4 or 16 confirmations", async () => {
    const batched = await postgres();
    const costs: Record<number, string[]> = {};
    for (const n of [1, 4, 16]) {
      const events = Array.from({ length: n }, () => confirmed(randomUUID(), "digital"));
      sent.length = 0;
      counting = true;
      try {
        await batched.db.transaction((tx) => moduleListener(finance).handleBatch(tx, events));
      } finally {
        counting = false;
      }
      costs[n] = sent.map((text) => text.trim().split(/\s+/).slice(0, 3).join(" "));
    }
    // The rows and notes, the invoices with their numbers, the outbox (the locks go with the inbox insert:
    // lockKeys).
    expect(costs[1]).toEqual(["select k.n, r.state,", "with numbers as", 'insert into "order_events"']);
    expect(costs[4]).toEqual(costs[1]);
    expect(costs[16]).toEqual(costs[1]);
  });

  it("writes the rows, notes and events handling the events one by one writes, numbers included", async () => {
    const ids = Object.fromEntries(
      ["a", "b", "c", "d", "e", "l", "t", "s", "x"].map((k) => [k, randomUUID()]),
    );
    // What the modules know before the batch: invoices for d, l and t, a shipment, a booking.
    const before = [confirmed(ids.d!, "digital"), confirmed(ids.l!, "physical"), confirmed(ids.t!, "travel")];
    const batch = [
      confirmed(ids.a!, "digital", "subscription"),
      cancelled(ids.b!),
      confirmed(ids.b!, "physical", "travel", "subscription"),
      confirmed(ids.c!, "digital"),
      cancelled(ids.c!),
      cancelled(ids.d!),
      reported("ShipmentReported", ids.l!, "picked"),
      reported("ShipmentReported", ids.l!, "waiting"),
      reported("ShipmentReported", ids.l!, "packed"),
      reported("BookingReported", ids.t!, "confirmed"),
      invoicePaid(ids.a!),
      confirmed(ids.e!, "digital"),
      confirmed(ids.e!, "digital"),
      invoicePaid(ids.s!),
      invoicePaid(ids.s!),
      confirmed(ids.s!, "subscription", "physical"),
      cancelled(ids.x!),
      cancelled(ids.x!),
    ];
    const [one, batched] = await Promise.all([postgres(), postgres()]);
    await handle(one, before, { oneByOne: true });
    await handle(one, batch, { oneByOne: true });
    await handle(batched, before);
    sent.length = 0;
    counting = true;
    try {
      await handle(batched, batch);
    } finally {
      counting = false;
    }
    // Four modules' transactions, each of at most six statements (read, numbers, creates, moves, notes,
    // outbox).
    expect(sent.length).toBeLessThanOrEqual(4 * 6);

    const expected = await written(one, ids);
    // Not empty nor trivial: the batch made rows in every module and moved some on.
    expect(expected.rows.finance).toContainEqual(
      expect.objectContaining({ orderId: "c", state: "refunded", version: 3 }),
    );
    expect(expected.rows.logistics).toContainEqual(
      expect.objectContaining({ orderId: "l", state: "packed", version: 3 }),
    );
    expect(expected.rows.subscription).toContainEqual(
      expect.objectContaining({ orderId: "s", state: "active" }),
    );
    expect(expected.notes).toContain("finance x cancelled");
    expect(await written(batched, ids)).toEqual(expected);
  });

  it("writes the same on PGlite", { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "module-batch-"));
    const lite = await openDatabase({ dataDir: dir });
    closing.push(
      () => rm(dir, { recursive: true, force: true }),
      () => lite.close(),
    );
    const ids = Object.fromEntries(["a", "b", "c"].map((k) => [k, randomUUID()]));
    const before = [confirmed(ids.c!, "physical")];
    const batch = [
      confirmed(ids.a!, "digital", "subscription"),
      cancelled(ids.b!),
      confirmed(ids.b!, "physical"),
      reported("ShipmentReported", ids.c!, "picked"),
      cancelled(ids.c!),
    ];
    const fresh = await postgres();
    await handle(fresh, before, { oneByOne: true });
    await handle(fresh, batch, { oneByOne: true });
    await handle(lite, before);
    await handle(lite, batch);
    expect(await written(lite, ids)).toEqual(await written(fresh, ids));
  });
});
