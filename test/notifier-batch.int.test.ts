import { randomUUID } from "node:crypto";
import { asc, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import { notifierListener } from "../src/modules/notifier/listener.ts";
import { notifications } from "../src/modules/notifier/table.ts";
import type { BusEvent } from "../src/relay/bus.ts";
import { InProcessBus } from "../src/relay/in-process-bus.ts";
import { deliverBatch, type ListenerDeps } from "../src/relay/listener.ts";
import type { OrderStatus } from "../src/statemachine/states.ts";
import { salesOrders } from "../src/statemachine/tables.ts";
import { createTestDatabase } from "./support/database.ts";

const invoice = {
  number: "INV-000001",
  amount: 1299,
  currency: "EUR",
  paymentReference: "psp-1",
  issuedAt: "2026-01-01T00:00:00.000Z",
};

/** The notifier's listener handed several events at once, as its batch consumer hands them. */
describe("the notifier's listener, a batch at a time", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  let deps: ListenerDeps;
  const outcomes: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    database = await openDatabase({ url: db.url, dataDir: ".data/test" });
    deps = {
      db: database.db,
      bus: new InProcessBus(),
      logger: createLogger("silent"),
      retry: { maxAttempts: 3, backoffMs: () => 10 },
      onHandled: (_, e, outcome) => outcomes.push(`${e.type}:${outcome}`),
    };
  });
  afterAll(async () => {
    await database?.close();
    await db?.drop();
  });

  async function order(status: OrderStatus): Promise<string> {
    const id = randomUUID();
    await database.db.insert(salesOrders).values({
      id,
      status,
      customerId: "c-1",
      contactEmail: `${id}@example.com`,
      totalAmount: 1299,
      currency: "EUR",
      requiredModules: ["finance"],
      involvedModules: ["finance"],
      idempotencyKey: id,
      requestHash: "h",
      placedEventId: randomUUID(),
    });
    return id;
  }

  const changed = (orderId: string, to: OrderStatus): BusEvent => ({
    id: randomUUID(),
    type: "OrderStateChanged",
    orderId,
    occurredAt: new Date().toISOString(),
    payload: { from: "pending", to, customerId: "c-1" },
  });
  const issued = (orderId: string): BusEvent => ({
    id: randomUUID(),
    type: "InvoiceIssued",
    orderId,
    occurredAt: new Date().toISOString(),
    payload: { module: "finance", state: "issued", from: null, version: 1, cause: "x", invoice },
  });
  const rowsOf = (ids: string[]) =>
    database.db
      .select()
      .from(notifications)
      .where(inArray(notifications.orderId, ids))
      .orderBy(asc(notifications.orderId), asc(notifications.kind));

  it("records each row's facts as one at a time would: both facts of one order, one of another, a cancel", async () => {
    const [both, half, cancelled] = [
      await order("confirmed"),
      await order("confirmed"),
      await order("cancelled"),
    ];
    const events = [
      changed(both, "confirmed"),
      changed(half, "confirmed"),
      changed(cancelled, "confirmed"),
      issued(both),
      changed(cancelled, "cancelled"),
    ];
    await deliverBatch(
      deps,
      notifierListener({ mailFrom: "orders@example.com" }),
      events.map((event, i) => ({ event, attempt: 1, sequence: i + 1 })),
    );
    const rows = await rowsOf([both, half, cancelled]);
    const byOrder = new Map(rows.map((r) => [r.orderId, r]));
    expect(byOrder.get(both)).toMatchObject({
      kind: "confirmed",
      status: "pending",
      heard: ["invoice-issued", "order-confirmed"],
      invoice,
      recipient: `${both}@example.com`,
    });
    expect(byOrder.get(half)).toMatchObject({ status: "waiting", heard: ["order-confirmed"], invoice: null });
    expect(byOrder.get(cancelled)).toMatchObject({ status: "cancelled" });
    expect(rows).toHaveLength(3);

    // The missing fact in a later batch makes the waiting row pending, with the invoice.
    await deliverBatch(deps, notifierListener({ mailFrom: "orders@example.com" }), [
      { event: issued(half), attempt: 1, sequence: 6 },
      { event: changed(both, "confirmed"), attempt: 1, sequence: 7 },
    ]);
    expect((await rowsOf([half]))[0]).toMatchObject({ status: "pending", invoice });
  });

  it("fails only the event whose order it cannot find; its neighbours are recorded", async () => {
    const known = await order("confirmed");
    const unknown = randomUUID();
    outcomes.length = 0;
    await deliverBatch(deps, notifierListener({ mailFrom: "orders@example.com" }), [
      { event: changed(known, "confirmed"), attempt: 1, sequence: 8 },
      { event: changed(unknown, "confirmed"), attempt: 1, sequence: 9 },
    ]);
    expect(outcomes).toEqual(["OrderStateChanged:applied", "OrderStateChanged:failed"]);
    expect(await rowsOf([known])).toHaveLength(1);
    expect(await rowsOf([unknown])).toHaveLength(0);
  });
});
