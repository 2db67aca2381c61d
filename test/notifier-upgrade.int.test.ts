/**
 * Upgrading to the version where InvoiceIssued carries the invoice: events
 * issued before it, still on the stream when it is deployed, must still make
 * their confirmation email (with the invoice) rather than dead letters.
 */
import { randomUUID } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/database.ts";
import { notifierListener } from "../src/modules/notifier/listener.ts";
import { notifications } from "../src/modules/notifier/table.ts";
import type { BusEvent } from "../src/relay/bus.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { createTestDatabase } from "./support/database.ts";

describe("the notifier across the upgrade that put the invoice on InvoiceIssued", () => {
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

  it("records the invoice of an InvoiceIssued published before the upgrade, read from the outbox", async () => {
    // The schema as it was before the invoice was on the event.
    await cp(join(import.meta.dirname, "..", "drizzle"), folder, { recursive: true });
    const journalPath = join(folder, "meta", "_journal.json");
    const journal = JSON.parse(await readFile(journalPath, "utf8")) as { entries: { tag: string }[] };
    const upgrade = journal.entries.findIndex((e) => e.tag.includes("notification_invoice"));
    expect(upgrade).toBeGreaterThan(0);
    journal.entries = journal.entries.slice(0, upgrade);
    await writeFile(journalPath, JSON.stringify(journal));

    const orderId = randomUUID();
    const legacy: BusEvent = {
      id: randomUUID(),
      type: "InvoiceIssued",
      orderId,
      occurredAt: "2026-11-30T10:00:00.000Z",
      payload: { module: "finance", state: "issued", from: null, version: 1, cause: randomUUID() },
    };
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await migrate(drizzle(client), { migrationsFolder: folder });
      await client.query(
        `insert into sales_orders (id, status, customer_id, contact_email, total_amount, currency, required_modules,
           involved_modules, idempotency_key, request_hash, placed_event_id, payment_reference)
         values ($1, 'fulfilling', 'c1', 'ada@example.com', 1299, 'EUR', '{finance}', '{finance}', 'k', 'h', $2, 'psp-7')`,
        [orderId, randomUUID()],
      );
      await client.query(
        `insert into finance_invoices (order_id, state, invoice_number, amount, currency, payment_reference, created_at)
         values ($1, 'issued', 'INV-000007', 1299, 'EUR', 'psp-7', '2026-11-30T10:00:00.123Z')`,
        [orderId],
      );
      await client.query(
        "insert into order_events (id, order_id, type, payload, published_at) values ($1, $2, $3, $4, now())",
        [legacy.id, orderId, legacy.type, legacy.payload],
      );
    } finally {
      await client.end();
    }

    // The upgrade: the rest of the migrations, then the delivery as the stream still holds it.
    const open = await openDatabase({ url: database.url, dataDir: folder });
    try {
      const invoice = {
        number: "INV-000007",
        amount: 1299,
        currency: "EUR",
        paymentReference: "psp-7",
        issuedAt: "2026-11-30T10:00:00.123Z",
      };
      const [stored] = await open.db
        .select({ payload: orderEvents.payload })
        .from(orderEvents)
        .where(eq(orderEvents.id, legacy.id));
      expect(stored!.payload.invoice).toEqual(invoice);

      const listener = notifierListener({ mailFrom: "orders@shop.example" });
      await open.db.transaction((tx) => listener.handleBatch(tx, [legacy]));
      const [row] = await open.db.select().from(notifications).where(eq(notifications.orderId, orderId));
      expect(row).toMatchObject({ kind: "confirmed", status: "waiting", heard: ["invoice-issued"], invoice });
    } finally {
      await open.close();
    }
  });
});
