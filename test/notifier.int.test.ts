import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq, inArray, sql } from "drizzle-orm";
import { simpleParser } from "mailparser";
import { PDFParse } from "pdf-parse";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../src/db/database.ts";
import { financeInvoices } from "../src/modules/finance/table.ts";
import { composeEmail } from "../src/modules/notifier/compose.ts";
import { invoiceIssued, notifierListener } from "../src/modules/notifier/listener.ts";
import { mailDomain } from "../src/modules/notifier/mailer.ts";
import { formatMoney } from "../src/modules/notifier/money.ts";
import { notifications } from "../src/modules/notifier/table.ts";
import { escapeHtml, loadTemplates, render } from "../src/modules/notifier/templates.ts";
import { orderEvents, processedEvents } from "../src/relay/tables.ts";
import { orderStateChanged } from "../src/statemachine/transition.ts";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { notifierRecords } from "./support/notifier.ts";
import { sagaClient } from "./support/saga.ts";
import { deleteStream, startTestService, type TestService } from "./support/service.ts";
import { notificationOf, type SmtpTestServer, startSmtpServer } from "./support/smtp.ts";
import { eventually } from "./support/wait.ts";

const mailFrom = "Shop <orders@shop.test>";

async function pdfText(pdf: Buffer): Promise<string> {
  const parser = new PDFParse({ data: new Uint8Array(pdf) });
  try {
    return (await parser.getText()).text;
  } finally {
    await parser.destroy();
  }
}

async function invoiceNumberOf(db: Db, orderId: string): Promise<string> {
  const [invoice] = await db.select().from(financeInvoices).where(eq(financeInvoices.orderId, orderId));
  return invoice!.invoiceNumber!;
}

/**
 * Email at the state-machine level, through PostgreSQL, JetStream and a real
 * SMTP server on loopback; the notifier runs in processes of its own, as a
 * deployment would run it.
 */
describe("the notifier", () => {
  const prefix = testPrefix();
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let smtp: SmtpTestServer;
  let core: TestService;
  let db: Db;
  let saga: ReturnType<typeof sagaClient>;
  let firstNotifier: TestService;
  let finance: TestService;
  const services: TestService[] = [];

  const startFinance = async () => {
    const service = await startTestService({
      databaseUrl: database.url,
      natsPrefix: prefix,
      roles: "finance",
    });
    services.push(service);
    return service;
  };

  const startNotifier = async (options: { listeners?: ReturnType<typeof notifierListener>[] } = {}) => {
    const service = await startTestService({
      databaseUrl: database.url,
      natsPrefix: prefix,
      roles: "notifier",
      env: { SMTP_URL: smtp.url, MAIL_FROM: mailFrom, NOTIFIER_RETRY_MS: "50" },
      listeners: options.listeners,
    });
    services.push(service);
    return service;
  };
  const stopService = async (service: TestService) => {
    await service.stop();
    services.splice(services.indexOf(service), 1);
  };

  const rowsOf = (orderId: string) =>
    db.select().from(notifications).where(eq(notifications.orderId, orderId)).orderBy(notifications.kind);
  const kindsReceived = (orderId: string) => smtp.forOrder(orderId).map((m) => m.kind);
  const mailsFor = (orderId: string, count: number) =>
    eventually(() => smtp.forOrder(orderId).length >= count && smtp.forOrder(orderId), {
      what: `${count} emails for ${orderId}`,
    });

  /** The notifier has handled every event of the order it listens to, and has nothing left to send for it. */
  const settled = (orderId: string, { sent = true } = {}) =>
    eventually(
      async () => {
        const events = await db
          .select({ id: orderEvents.id })
          .from(orderEvents)
          .where(and(eq(orderEvents.orderId, orderId), notifierRecords));
        const done = await db
          .select({ id: processedEvents.eventId })
          .from(processedEvents)
          .where(
            and(
              eq(processedEvents.consumer, "notifier"),
              inArray(
                processedEvents.eventId,
                events.map((e) => e.id),
              ),
            ),
          );
        const rows = await rowsOf(orderId);
        return done.length === events.length && (!sent || rows.every((r) => r.status === "sent")) && rows;
      },
      { what: `the notifier to settle on ${orderId}` },
    );

  /** A later order whose emails have arrived: the notifier has gone past everything published before it. */
  const barrier = async () => {
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await mailsFor(order.id, 2);
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    smtp = await startSmtpServer();
    core = await startTestService({
      databaseUrl: database.url,
      natsPrefix: prefix,
      roles: "gateway,relay,orders,logistics,travelium,subscription",
    });
    services.push(core);
    db = core.service.database.db;
    saga = sagaClient(core.url!);
    finance = await startFinance();
    firstNotifier = await startNotifier();
  });

  afterAll(async () => {
    for (const service of [...services].reverse()) await service.stop();
    await smtp?.close();
    await deleteStream(prefix);
    await database?.drop();
  });

  it("sends a digital order two emails: the confirmation with its invoice as a PDF, then the completion", async () => {
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(order.id, { status: "COMPLETED" });
    const [confirmed, completed] = await mailsFor(order.id, 2);
    const invoiceNumber = await invoiceNumberOf(db, order.id);

    expect(kindsReceived(order.id)).toEqual(["confirmed", "completed"]);
    for (const [received, kind] of [
      [confirmed!, "confirmed"],
      [completed!, "completed"],
    ] as const) {
      expect(received.to).toEqual(["ada@example.com"]);
      expect(received.mail.from?.value[0]?.address).toBe("orders@shop.test");
      expect(received.messageId).toBe(`<order-${order.id}.${kind}@shop.test>`);
      expect(received.orderId).toBe(order.id);
      expect(received.kind).toBe(kind);
      expect(received.mail.html).toContain(order.id);
    }

    const confirmation = confirmed!.mail;
    expect(confirmation.subject).toContain(invoiceNumber);
    expect(confirmation.text).toContain(`Your invoice ${invoiceNumber}`);
    expect(confirmation.text).toContain("1 x The Order Machine (e-book) (EBOOK-1) at 12.99 EUR: 12.99 EUR");
    expect(confirmation.html).toContain(`<strong>${invoiceNumber}</strong>`);
    expect(confirmation.attachments).toHaveLength(1);
    const [pdf] = confirmation.attachments;
    expect(pdf!.contentType).toBe("application/pdf");
    expect(pdf!.filename).toBe(`${invoiceNumber}.pdf`);
    expect(pdf!.content.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    const text = await pdfText(pdf!.content);
    expect(text).toContain(invoiceNumber);
    expect(text).toContain("ada@example.com");
    expect(text).toContain(order.id);
    expect(text).toMatch(/EBOOK-1\s+The Order Machine \(e-book\)\s+1\s+12\.99 EUR\s+12\.99 EUR/);
    expect(text).toMatch(/Total\s+12\.99 EUR/);

    expect(completed!.mail.subject).toMatch(/review/i);
    expect(completed!.mail.attachments).toHaveLength(0);

    const rows = await settled(order.id);
    expect(rows.map((r) => [r.kind, r.status, r.attempts, r.recipient])).toEqual([
      ["completed", "sent", 1, "ada@example.com"],
      ["confirmed", "sent", 1, "ada@example.com"],
    ]);

    // The invoice comes with InvoiceIssued, as Finance wrote it; the email is made from that, not from Finance's table.
    const [invoice] = await db.select().from(financeInvoices).where(eq(financeInvoices.orderId, order.id));
    const confirmedRow = rows.find((r) => r.kind === "confirmed")!;
    expect(confirmedRow.invoice).toEqual({
      number: invoice!.invoiceNumber,
      amount: invoice!.amount,
      currency: invoice!.currency,
      paymentReference: invoice!.paymentReference,
      issuedAt: invoice!.createdAt.toISOString(),
    });
    const other = { ...confirmedRow.invoice!, number: "INV-999999", amount: 4200 };
    const composed = await composeEmail(db, { ...confirmedRow, invoice: other }, loadTemplates(), mailFrom);
    expect(composed.subject).toContain("INV-999999");
    expect(composed.attachments[0]!.filename).toBe("INV-999999.pdf");
    expect(await pdfText(composed.attachments[0]!.content)).toMatch(/Total\s+42\.00 EUR/);
  });

  it("holds the confirmation until Finance has issued the invoice, whichever of the two it hears first", async () => {
    await stopService(finance);
    let order: { id: string };
    try {
      order = await saga.placeAndConfirm(["EBOOK-1"]);
      const [waiting] = await settled(order.id, { sent: false });
      expect(waiting).toMatchObject({
        kind: "confirmed",
        status: "waiting",
        heard: ["order-confirmed"],
        attempts: 0,
      });
      expect(smtp.forOrder(order.id)).toEqual([]);
    } finally {
      // Back in any case, so one failure here does not fail every test after it.
      finance = await startFinance();
    }
    await saga.until(order.id, { status: "COMPLETED" });
    const [confirmed] = await mailsFor(order.id, 2);
    expect(confirmed!.mail.attachments[0]!.filename).toBe(`${await invoiceNumberOf(db, order.id)}.pdf`);
    expect((await rowsOf(order.id)).find((r) => r.kind === "confirmed")).toMatchObject({
      status: "sent",
      heard: ["invoice-issued", "order-confirmed"],
      attempts: 1,
    });

    // The other way round, on the listener alone, in a transaction that is rolled back.
    const placed = await saga.place(["EBOOK-1"]);
    const listener = notifierListener({ mailFrom });
    const event = (type: string, payload: Record<string, unknown>) => ({
      id: randomUUID(),
      type,
      orderId: placed.id,
      occurredAt: new Date().toISOString(),
      payload,
    });
    const issued = {
      module: "finance",
      state: "issued",
      from: null,
      version: 1,
      cause: randomUUID(),
      invoice: {
        number: "INV-000001",
        amount: 1299,
        currency: "EUR",
        paymentReference: "pay-1",
        issuedAt: new Date().toISOString(),
      },
    };
    const rolledBack = new Error("rolled back");
    const seen: unknown[] = [];
    await expect(
      db.transaction(async (tx) => {
        const rows = () => tx.select().from(notifications).where(eq(notifications.orderId, placed.id));
        await listener.handleBatch(tx, [event(invoiceIssued, issued)]);
        seen.push((await rows()).map((r) => [r.kind, r.status, r.heard]));
        await listener.handleBatch(tx, [
          event(orderStateChanged, { from: "pending", to: "confirmed", customerId: "customer-1" }),
        ]);
        seen.push((await rows()).map((r) => [r.kind, r.status, r.heard]));
        // Heard again (a replay the inbox does not know of): no change.
        await listener.handleBatch(tx, [event(invoiceIssued, issued)]);
        seen.push((await rows()).map((r) => [r.kind, r.status, r.heard]));
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);
    expect(seen).toEqual([
      [["confirmed", "waiting", ["invoice-issued"]]],
      [["confirmed", "pending", ["invoice-issued", "order-confirmed"]]],
      [["confirmed", "pending", ["invoice-issued", "order-confirmed"]]],
    ]);
  });

  it("sends nothing for module-internal changes: a physical order being shipped has only its confirmation", async () => {
    const order = await saga.placeAndConfirm(["MUG-1"]);
    await saga.until(order.id, { status: "FULFILLING", rows: { finance: "paid", logistics: "waiting" } });
    await saga.shipment(order.id, "PICKED");
    await saga.shipment(order.id, "PACKED");
    await saga.shipment(order.id, "SHIPPED");
    await saga.until(order.id, { rows: { logistics: "shipped" } });
    await barrier();
    await settled(order.id);

    expect(kindsReceived(order.id)).toEqual(["confirmed"]);
    expect(smtp.forOrder(order.id)[0]!.mail.text).toMatch(/parcel leaves our warehouse soon/);
    expect((await rowsOf(order.id)).map((r) => r.kind)).toEqual(["confirmed"]);

    // Delivered, the order completes, and only then comes the second email.
    await saga.shipment(order.id, "DELIVERED");
    await saga.until(order.id, { status: "COMPLETED" });
    await mailsFor(order.id, 2);
    expect(kindsReceived(order.id)).toEqual(["confirmed", "completed"]);
  });

  it("sends a cancelled order no completion email; one cancelled before payment gets none at all", async () => {
    const order = await saga.placeAndConfirm(["MUG-1"]);
    await mailsFor(order.id, 1);
    await saga.cancel(order.id);
    await saga.until(order.id, { status: "CANCELLED", rows: { finance: "refunded", logistics: "returned" } });
    // A late carrier report changes nothing either.
    await saga.shipment(order.id, "DELIVERED");

    const unpaid = await saga.place(["EBOOK-1"]);
    await saga.cancel(unpaid.id);
    await saga.until(unpaid.id, { status: "CANCELLED" });

    await barrier();
    await settled(order.id);
    await settled(unpaid.id);
    expect(kindsReceived(order.id)).toEqual(["confirmed"]);
    expect((await rowsOf(order.id)).map((r) => [r.kind, r.status])).toEqual([["confirmed", "sent"]]);
    expect(smtp.forOrder(unpaid.id)).toEqual([]);
    expect(await rowsOf(unpaid.id)).toEqual([]);
  });

  it("sends each email once while two notifiers run, every event is replayed, and a notifier is restarted mid-run", async () => {
    // A second notifier process; beside it, a consumer new to the stream hands every event ever
    // published to the notifier's handler again, past the inbox that would otherwise stop it.
    const replay = notifierListener({ mailFrom, name: "notifier-replay" });
    await startNotifier({ listeners: [replay] });

    const orders = await Promise.all(Array.from({ length: 6 }, () => saga.placeAndConfirm(["EBOOK-1"])));
    await eventually(() => orders.some((o) => smtp.forOrder(o.id).length > 0), { what: "a first email" });
    await stopService(firstNotifier);
    await startNotifier();

    for (const order of orders) await mailsFor(order.id, 2);
    await eventually(
      async () => {
        const [published] = await db
          .select({ n: sql<number>`count(*)::int` })
          .from(orderEvents)
          .where(notifierRecords);
        const [replayed] = await db
          .select({ n: sql<number>`count(*)::int` })
          .from(processedEvents)
          .where(eq(processedEvents.consumer, "notifier-replay"));
        return published!.n === replayed!.n;
      },
      { what: "the replay to reach the end of the stream" },
    );
    for (const order of orders) {
      await settled(order.id);
      expect(kindsReceived(order.id)).toEqual(["confirmed", "completed"]);
    }

    // Over the whole file: every notification arrived exactly once, and nothing else did.
    const rows = await db.select().from(notifications);
    expect(rows.every((r) => r.status === "sent")).toBe(true);
    const messageIds = smtp.received.map((m) => m.messageId);
    expect([...messageIds].sort()).toEqual(rows.map((r) => r.messageId).sort());
    expect(new Set(messageIds).size).toBe(messageIds.length);
  });

  it("delays emails while the SMTP server is down, and sends them once it is back", async () => {
    await smtp.close();
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(order.id, { status: "COMPLETED" });
    const failing = await eventually(
      async () => {
        const rows = await rowsOf(order.id);
        const confirmed = rows.find((r) => r.kind === "confirmed");
        // Two tries made and over (not one in flight that the server might still take).
        return rows.length === 2 && confirmed && confirmed.attempts >= 2 && !confirmed.claimedBy && rows;
      },
      { what: "failed tries" },
    );
    expect(failing.map((r) => r.status)).toEqual(["pending", "pending"]);
    const [completed, confirmed] = failing;
    expect(confirmed!.lastError).toMatch(/ECONNREFUSED/);
    // The completion email waits for the confirmation rather than overtaking it.
    expect(completed!.attempts).toBe(0);
    expect(smtp.forOrder(order.id)).toEqual([]);

    await smtp.open();
    await mailsFor(order.id, 2);
    expect(kindsReceived(order.id)).toEqual(["confirmed", "completed"]);
    const rows = await settled(order.id);
    expect(rows.find((r) => r.kind === "confirmed")!.attempts).toBeGreaterThan(confirmed!.attempts);
  });
});

/** The embedded default: PGlite, the in-process bus, no SMTP_URL. */
describe("the notifier without SMTP_URL", () => {
  let dataDir: string;
  let app: TestService;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "notifier-eml-"));
    // An empty DATABASE_URL means the embedded PGlite in DATA_DIR; no prefix means the in-process bus.
    app = await startTestService({ databaseUrl: "", env: { DATA_DIR: dataDir, MAIL_FROM: mailFrom } });
  });

  afterAll(async () => {
    await app?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("writes each email as an .eml file under DATA_DIR/mail", async () => {
    expect(app.service.database.kind).toBe("pglite");
    const saga = sagaClient(app.url!);
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(order.id, { status: "COMPLETED" });
    const mailDir = join(dataDir, "mail");
    const files = await eventually(
      async () => {
        const names = (await readdir(mailDir).catch(() => [])).filter((n) => n.endsWith(".eml"));
        return names.length >= 2 && names.sort();
      },
      { what: ".eml files" },
    );
    expect(files).toEqual([`order-${order.id}.completed.eml`, `order-${order.id}.confirmed.eml`]);
    // Written through a temp file and renamed: nothing else is left in the folder.
    expect((await readdir(mailDir)).sort()).toEqual(files);

    const raw = await readFile(join(mailDir, `order-${order.id}.confirmed.eml`));
    expect(raw.includes("\r\n")).toBe(true);
    const mail = await simpleParser(raw);
    expect(notificationOf(mail)).toEqual({
      messageId: `<order-${order.id}.confirmed@shop.test>`,
      orderId: order.id,
      kind: "confirmed",
    });
    expect(mail.to && !Array.isArray(mail.to) && mail.to.value[0]?.address).toBe("ada@example.com");
    const invoiceNumber = await invoiceNumberOf(app.service.database.db, order.id);
    expect(await pdfText(mail.attachments[0]!.content)).toContain(invoiceNumber);

    const completed = await simpleParser(await readFile(join(mailDir, `order-${order.id}.completed.eml`)));
    expect(notificationOf(completed).kind).toBe("completed");
  });
});

describe("the notifier's pieces", () => {
  it("escapes values in the HTML part only, and refuses a placeholder it has no value for", () => {
    const data = { name: `Tom & Jerry's <b>"mug"</b>`, lines: [{ sku: "A<1>" }, { sku: "B" }], ships: false };
    expect(render("{{name}}", data, { html: true })).toBe(
      "Tom &amp; Jerry&#39;s &lt;b&gt;&quot;mug&quot;&lt;/b&gt;",
    );
    expect(render("{{name}}", data)).toBe(data.name);
    expect(render("{{#lines}}[{{sku}}]{{/lines}}{{#ships}}ships{{/ships}}", data, { html: true })).toBe(
      "[A&lt;1&gt;][B]",
    );
    expect(() => render("{{nmae}}", data)).toThrow(/nmae/);
    expect(escapeHtml("<&>")).toBe("&lt;&amp;&gt;");
  });

  it("formats minor units by the currency's digits", () => {
    expect(formatMoney(1299, "EUR")).toBe("12.99 EUR");
    expect(formatMoney(123456789, "USD")).toBe("1,234,567.89 USD");
    expect(formatMoney(1500, "JPY")).toBe("1,500 JPY");
    expect(formatMoney(5, "EUR")).toBe("0.05 EUR");
  });

  it("takes the Message-ID's domain from MAIL_FROM", () => {
    expect(mailDomain("orders@shop.test")).toBe("shop.test");
    expect(mailDomain("Shop <orders@Shop.Test>")).toBe("shop.test");
    expect(mailDomain("nobody")).toBe("localhost");
  });
});
