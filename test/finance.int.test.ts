import { randomUUID } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq, inArray, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase, query } from "../src/db/database.ts";
import { finance } from "../src/modules/finance/index.ts";
import { invoiceNumberOf } from "../src/modules/finance/numbering.ts";
import { financeInvoices } from "../src/modules/finance/table.ts";
import type { BusEvent } from "../src/relay/bus.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { moduleListener } from "../src/statemachine/module-listener.ts";
import { orderCancelled } from "../src/statemachine/transition.ts";
import { createTestDatabase } from "./support/database.ts";

const listener = moduleListener(finance);

function event(type: string, orderId: string, payload: Record<string, unknown>): BusEvent {
  return { id: randomUUID(), type, orderId, occurredAt: new Date().toISOString(), payload };
}
const confirmed = (orderId: string) =>
  event("OrderConfirmed", orderId, {
    paymentReference: `psp-${orderId}`,
    amount: 1299,
    currency: "EUR",
    lines: [{ sku: "EBOOK-1", kind: "digital", quantity: 1 }],
    involvedModules: ["finance"],
  });
const cancelled = (orderId: string) =>
  event(orderCancelled, orderId, { reason: "changed my mind", from: "confirmed" });

class RolledBack extends Error {}

/** Finance's own listener, driven inside transactions of the test's making (committed or aborted). */
describe("Finance", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let open: Database;

  const handle = (e: BusEvent, { rollBack = false } = {}) =>
    open.db
      .transaction(async (tx) => {
        await listener.handleBatch(tx, [e]);
        if (rollBack) throw new RolledBack();
      })
      .catch((error: unknown) => {
        if (!(error instanceof RolledBack)) throw error;
      });
  const invoiceOf = async (orderId: string) =>
    (await open.db.select().from(financeInvoices).where(eq(financeInvoices.orderId, orderId)))[0];
  const eventsOf = async (orderId: string) =>
    (
      await open.db
        .select({ type: orderEvents.type })
        .from(orderEvents)
        .where(
          and(
            eq(orderEvents.orderId, orderId),
            inArray(orderEvents.type, ["InvoiceIssued", "InvoiceRefunded"]),
          ),
        )
        .orderBy(orderEvents.seq)
    ).map((e) => e.type);

  beforeAll(async () => {
    database = await createTestDatabase();
    open = await openDatabase({ url: database.url, dataDir: await mkdtemp(join(tmpdir(), "finance-")) });
  });
  afterAll(async () => {
    await open?.close();
    await database?.drop();
  });

  it("numbers invoices INV-000001, INV-000002, ..., past six digits INV-1234567", async () => {
    const [row] = await query<Record<string, string>>(
      open.db,
      sql`select ${sql.join(
        [1, 42, 123456, 999999, 1000000, 1234567].map(
          (n) => sql`${invoiceNumberOf(sql`${n}::int`)} as "${sql.raw(String(n))}"`,
        ),
        sql`, `,
      )}`,
    );
    expect(row).toEqual({
      "1": "INV-000001",
      "42": "INV-000042",
      "123456": "INV-123456",
      "999999": "INV-999999",
      "1000000": "INV-1000000",
      "1234567": "INV-1234567",
    });
  });

  it("numbers invoices without gaps, even when issuing transactions roll back", async () => {
    const committed: string[] = [];
    for (let i = 0; i < 12; i++) {
      const orderId = randomUUID();
      const rollBack = i % 3 === 1;
      await handle(confirmed(orderId), { rollBack });
      if (rollBack) expect(await invoiceOf(orderId)).toBeUndefined();
      else committed.push(orderId);
    }
    // Side by side too: the issuing transactions queue on the counter, none takes a number another may still return.
    const together = Array.from({ length: 6 }, () => randomUUID());
    await Promise.all(together.map((orderId, i) => handle(confirmed(orderId), { rollBack: i % 2 === 0 })));
    committed.push(...together.filter((_, i) => i % 2 === 1));

    const numbers = await open.db.select({ number: financeInvoices.invoiceNumber }).from(financeInvoices);
    const issued = numbers.map((n) => Number(n.number!.replace("INV-", ""))).sort((a, b) => a - b);
    expect(issued).toHaveLength(committed.length);
    expect(issued).toEqual(issued.map((_, i) => i + 1));
  });

  it("issues no invoice for an order it knows is cancelled: refunded at once, no number used, no InvoiceIssued", async () => {
    const before = await open.db.select().from(financeInvoices);
    const orderId = randomUUID();
    await handle(cancelled(orderId));
    await handle(confirmed(orderId));

    const invoice = await invoiceOf(orderId);
    expect(invoice).toMatchObject({
      state: "refunded",
      invoiceNumber: null,
      paymentReference: `psp-${orderId}`,
    });
    expect(await eventsOf(orderId)).toEqual(["InvoiceRefunded"]);

    // The next invoice takes the number after the last one issued: none was used up.
    const next = randomUUID();
    await handle(confirmed(next));
    expect((await invoiceOf(next))!.invoiceNumber).toBe(`INV-${String(before.length + 1).padStart(6, "0")}`);
  });

  it("issues and settles in the transaction that hears OrderConfirmed: InvoiceIssued (with the invoice), then InvoicePaid", async () => {
    const orderId = randomUUID();
    await handle(confirmed(orderId));
    const invoice = await invoiceOf(orderId);
    expect(invoice).toMatchObject({ state: "paid", version: 2, paymentReference: `psp-${orderId}` });
    const events = await open.db
      .select({ type: orderEvents.type, payload: orderEvents.payload })
      .from(orderEvents)
      .where(eq(orderEvents.orderId, orderId))
      .orderBy(orderEvents.seq);
    expect(events.map((e) => e.type)).toEqual(["InvoiceIssued", "InvoicePaid"]);
    // The row only passed through issued; both events name the order's modules, as the confirmation did.
    expect(events[0]!.payload).toMatchObject({
      state: "issued",
      version: 1,
      invoice: { number: invoice!.invoiceNumber },
      passing: true,
      involvedModules: ["finance"],
    });
    expect(events[1]!.payload).toMatchObject({
      state: "paid",
      from: "issued",
      version: 2,
      involvedModules: ["finance"],
    });
    expect(events[1]!.payload).not.toHaveProperty("passing");

    // The InvoiceIssued coming back, and a repeated OrderConfirmed, change nothing.
    await handle(event("InvoiceIssued", orderId, events[0]!.payload));
    await handle(confirmed(orderId));
    expect(await invoiceOf(orderId)).toMatchObject({ state: "paid", version: 2 });
    expect(await open.db.select().from(orderEvents).where(eq(orderEvents.orderId, orderId))).toHaveLength(2);
  });

  it("refunds an invoice issued before the cancel was heard (a credit note): its number stays", async () => {
    const orderId = randomUUID();
    await handle(confirmed(orderId));
    const issued = await invoiceOf(orderId);
    await handle(cancelled(orderId));
    expect(await invoiceOf(orderId)).toMatchObject({
      state: "refunded",
      invoiceNumber: issued!.invoiceNumber,
    });
    expect(await eventsOf(orderId)).toEqual(["InvoiceIssued", "InvoiceRefunded"]);
  });
});

describe("Finance's migration to gap-free numbers", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let folder: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    folder = await mkdtemp(join(tmpdir(), "migrations-"));
  });
  afterAll(async () => {
    await database?.drop();
    await rm(folder, { recursive: true, force: true });
  });

  it("starts the counter after the highest invoice number already issued", async () => {
    // The schema as it was before the counter, with invoices issued from the sequence.
    const full = join(import.meta.dirname, "..", "drizzle");
    await cp(full, folder, { recursive: true });
    const journalPath = join(folder, "meta", "_journal.json");
    const journal = JSON.parse(await readFile(journalPath, "utf8")) as { entries: { tag: string }[] };
    const counter = journal.entries.findIndex((e) => e.tag.includes("invoice_counter"));
    expect(counter).toBeGreaterThan(0);
    journal.entries = journal.entries.slice(0, counter);
    await writeFile(journalPath, JSON.stringify(journal));
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await migrate(drizzle(client), { migrationsFolder: folder });
      for (const n of [3, 41, 7]) {
        await client.query(
          "insert into finance_invoices (order_id, state, invoice_number, amount, currency) values ($1, 'paid', $2, 100, 'EUR')",
          [randomUUID(), `INV-${String(n).padStart(6, "0")}`],
        );
      }
    } finally {
      await client.end();
    }

    const open = await openDatabase({ url: database.url, dataDir: folder });
    try {
      const orderId = randomUUID();
      await open.db.transaction((tx) => listener.handleBatch(tx, [confirmed(orderId)]));
      const [invoice] = await open.db
        .select()
        .from(financeInvoices)
        .where(eq(financeInvoices.orderId, orderId));
      expect(invoice!.invoiceNumber).toBe("INV-000042");
    } finally {
      await open.close();
    }
  });
});
