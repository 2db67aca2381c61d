import { and, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../src/db/database.ts";
import { invoiceIssued } from "../src/modules/notifier/listener.ts";
import { notifications } from "../src/modules/notifier/table.ts";
import { orderEvents, processedEvents } from "../src/relay/tables.ts";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { notifierRecords } from "./support/notifier.ts";
import { sagaClient } from "./support/saga.ts";
import { deleteStream, startTestService, type TestService } from "./support/service.ts";
import { type SmtpTestServer, startSmtpServer } from "./support/smtp.ts";
import { eventually } from "./support/wait.ts";

/**
 * A cancel racing the payment: the customer pays and cancels at once, while
 * Finance is issuing the invoice the confirmation email waits for. Once the
 * order is cancelled, no email announcing it goes out.
 */
describe("the notifier after a cancel", () => {
  const prefix = testPrefix();
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let smtp: SmtpTestServer;
  let app: TestService;
  let db: Db;
  let saga: ReturnType<typeof sagaClient>;

  beforeAll(async () => {
    database = await createTestDatabase();
    smtp = await startSmtpServer();
    app = await startTestService({
      databaseUrl: database.url,
      natsPrefix: prefix,
      env: { SMTP_URL: smtp.url, MAIL_FROM: "orders@shop.test", NOTIFIER_RETRY_MS: "50" },
    });
    db = app.service.database.db;
    saga = sagaClient(app.url!);
  });

  afterAll(async () => {
    await app?.stop();
    await smtp?.close();
    await deleteStream(prefix);
    await database?.drop();
  });

  /** Every event of these orders that the notifier listens to has been handled by it. */
  const notifierCaughtUp = (orderIds: string[]) =>
    eventually(
      async () => {
        const events = await db
          .select({ id: orderEvents.id })
          .from(orderEvents)
          .where(and(inArray(orderEvents.orderId, orderIds), notifierRecords));
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
        return done.length === events.length;
      },
      { what: "the notifier to handle every event of the cancelled orders", timeoutMs: 60_000 },
    );

  it("sends no confirmation for an order paid and cancelled at once; orders left alone get theirs", async () => {
    const lines = ["MUG-1", "EBOOK-1"];
    /** Orders whose confirmation was claimed before their cancel committed: it may go (README, "A cancel stops what is not yet sent"). */
    const claimedBeforeCancel = new Set<string>();
    const [cancelled, kept] = await Promise.all([
      Promise.all(
        Array.from({ length: 30 }, async () => {
          const order = await saga.placeAndConfirm(lines);
          // A mail handed to the server before the cancel was asked for stays sent: such an order proves nothing.
          if (smtp.forOrder(order.id).length > 0) claimedBeforeCancel.add(order.id);
          await saga.cancel(order.id);
          // Nor one claimed before the cancel committed, whose mail is on its way (rendering, the SMTP
          // conversation): a claim counts its attempt, and one that sees the order cancelled counts none.
          const [row] = await db
            .select({ attempts: notifications.attempts })
            .from(notifications)
            .where(and(eq(notifications.orderId, order.id), eq(notifications.kind, "confirmed")));
          if ((row?.attempts ?? 0) > 0) claimedBeforeCancel.add(order.id);
          return order.id;
        }),
      ),
      Promise.all(Array.from({ length: 10 }, async () => (await saga.placeAndConfirm(lines)).id)),
    ]);

    for (const orderId of cancelled)
      await saga.until(orderId, {
        status: "CANCELLED",
        rows: { finance: "refunded", logistics: "returned" },
      });
    for (const orderId of kept)
      await eventually(() => smtp.forOrder(orderId).some((m) => m.kind === "confirmed"), {
        what: `the confirmation of ${orderId}`,
        timeoutMs: 30_000,
      });
    await notifierCaughtUp(cancelled);
    // Whatever is left for them is not going to be sent: nothing pending, nothing in flight.
    await eventually(
      async () => {
        const rows = await db
          .select({ status: notifications.status })
          .from(notifications)
          .where(inArray(notifications.orderId, cancelled));
        return rows.every((r) => r.status !== "pending");
      },
      { what: "no email left pending for a cancelled order" },
    );

    expect(claimedBeforeCancel.size).toBeLessThan(cancelled.length / 2);
    const mailedCancelled = cancelled.filter(
      (orderId) => !claimedBeforeCancel.has(orderId) && smtp.forOrder(orderId).length > 0,
    );
    expect(mailedCancelled).toEqual([]);
    for (const orderId of kept) expect(smtp.forOrder(orderId).map((m) => m.kind)).toEqual(["confirmed"]);

    // The race did happen: for some of them Finance issued the invoice after the cancel (then refunded it).
    const timeline = await db
      .select({ orderId: orderEvents.orderId, type: orderEvents.type })
      .from(orderEvents)
      .where(
        and(
          inArray(orderEvents.orderId, cancelled),
          inArray(orderEvents.type, ["OrderCancelled", invoiceIssued]),
        ),
      )
      .orderBy(orderEvents.seq);
    const issuedAfterCancel = cancelled.filter((orderId) => {
      const types = timeline.filter((e) => e.orderId === orderId).map((e) => e.type);
      return types.indexOf(invoiceIssued) > types.indexOf("OrderCancelled");
    });
    expect(issuedAfterCancel.length).toBeGreaterThan(0);
  }, 120_000);
});
