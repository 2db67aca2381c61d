import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { sagaClient } from "./support/saga.ts";
import { deleteStream, errorCode, startTestService, type TestService } from "./support/service.ts";

/**
 * Every module on one order, through PostgreSQL and JetStream, each group of
 * listeners in its own service instance (as separate processes would run them).
 */
describe("the saga", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const services: TestService[] = [];
  let saga: ReturnType<typeof sagaClient>;

  const start = async (roles: string) => {
    const service = await startTestService({ databaseUrl: db.url, natsPrefix: prefix, roles });
    services.push(service);
    return service;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const gateway = await start("gateway,relay,orders");
    await start("finance");
    await start("travelium,subscription");
    saga = sagaClient(gateway.url!);
  });

  afterAll(async () => {
    for (const service of services.reverse()) await service.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("does not complete a paid physical order while Logistics is not running; once it starts, it catches up", async () => {
    const order = await saga.placeAndConfirm(["MUG-1"]);
    await saga.until(order.id, { status: "FULFILLING", rows: { finance: "paid" } });
    // Finance is done and nothing else runs: nothing may move the order now.
    await new Promise((r) => setTimeout(r, 500));
    const waiting = await saga.read(order.id);
    expect(waiting.status).toBe("FULFILLING");
    expect(waiting.rows.logistics).toBeUndefined();

    await start("logistics");
    await saga.until(order.id, { rows: { logistics: "waiting" } });
    expect(errorCode(await saga.shipment(order.id, "DELIVERED"))).toBeUndefined();
    await saga.until(order.id, { status: "COMPLETED", rows: { logistics: "delivered" } });
  });

  it("keeps a mixed order FULFILLING until the shipment is delivered and the booking travelled", async () => {
    const order = await saga.placeAndConfirm(["MUG-1", "TRIP-LIS", "BOX-MONTHLY", "EBOOK-1"]);
    const started = await saga.until(order.id, {
      status: "FULFILLING",
      rows: { finance: "paid", logistics: "waiting", travelium: "reserved", subscription: "active" },
    });
    expect(started.requiredModules).toEqual(["finance", "logistics", "travelium", "subscription"]);
    expect(started.completion).toEqual({ waitingFor: ["logistics", "travelium"], complete: false });
    expect(started.nextStatuses).toEqual(["COMPLETED", "CANCELLED"]);

    await saga.shipment(order.id, "DELIVERED");
    await saga.until(order.id, { rows: { logistics: "delivered" } });
    await saga.booking(order.id, "CONFIRMED");
    await saga.until(order.id, { rows: { travelium: "confirmed" } });
    expect((await saga.read(order.id)).status).toBe("FULFILLING");

    await saga.booking(order.id, "TRAVELLED");
    const done = await saga.until(order.id, { status: "COMPLETED" });
    expect(done.rows).toEqual({
      finance: "paid",
      logistics: "delivered",
      travelium: "travelled",
      subscription: "active",
    });
    expect(done.events.filter((e) => e.type === "OrderStateChanged")).toHaveLength(4);
  });

  it("applies repeated, late, out-of-order and state-skipping reports as if they came in order", async () => {
    const order = await saga.placeAndConfirm(["MUG-1", "TRIP-LIS"]);
    await saga.until(order.id, { rows: { logistics: "waiting", travelium: "reserved" } });

    await saga.shipment(order.id, "SHIPPED", "carrier-1");
    await saga.shipment(order.id, "SHIPPED", "carrier-1");
    await saga.shipment(order.id, "PICKED");
    await saga.until(order.id, { rows: { logistics: "shipped" } });
    await saga.shipment(order.id, "DELIVERED");
    await saga.shipment(order.id, "PACKED");
    await saga.booking(order.id, "TRAVELLED");
    await saga.booking(order.id, "CONFIRMED");
    const done = await saga.until(order.id, { status: "COMPLETED" });
    // Give the late reports time to be applied (or not), then look again.
    await new Promise((r) => setTimeout(r, 500));
    const after = await saga.read(order.id);
    expect(after.rows).toMatchObject({ logistics: "delivered", travelium: "travelled" });
    const types = after.events.map((e) => e.type);
    expect(types.filter((t) => t === "ShipmentShipped")).toHaveLength(1);
    expect(types.filter((t) => t === "ShipmentDelivered")).toHaveLength(1);
    expect(types).not.toContain("ShipmentPicked");
    expect(types).not.toContain("BookingConfirmed");
    expect(done.status).toBe("COMPLETED");

    expect(errorCode(await saga.shipment(order.id, "DELIVERED", "carrier-1"))).toBe("CONFLICT");
  });

  it("rolls every module back, once, when cancelled at each stage", async () => {
    const skus = ["MUG-1", "TRIP-LIS", "BOX-MONTHLY"];
    const rolledBack = {
      finance: "refunded",
      logistics: "returned",
      travelium: "cancelled",
      subscription: "terminated",
    };

    const pending = await saga.place(skus);
    await saga.cancel(pending.id);
    const p = await saga.until(pending.id, { status: "CANCELLED" });
    expect(p.rows).toEqual({});

    // Cancelled while the modules are still reacting to OrderConfirmed.
    const racing = await saga.place(skus);
    await saga.confirm(racing);
    await saga.cancel(racing.id);

    const confirmed = await saga.place(skus);
    await saga.confirm(confirmed);
    await saga.until(confirmed.id, { rows: { travelium: "reserved" } });
    await saga.cancel(confirmed.id);

    const fulfilling = await saga.placeAndConfirm(skus);
    await saga.until(fulfilling.id, {
      status: "FULFILLING",
      rows: { logistics: "waiting", subscription: "active" },
    });
    await saga.cancel(fulfilling.id);

    for (const order of [racing, confirmed, fulfilling]) {
      const cancelled = await saga.until(
        order.id,
        { status: "CANCELLED", rows: rolledBack },
        `rollback of ${order.id}`,
      );
      const types = cancelled.events.map((e) => e.type);
      for (const rollback of [
        "InvoiceRefunded",
        "ShipmentReturned",
        "BookingCancelled",
        "SubscriptionTerminated",
      ]) {
        expect(types.filter((t) => t === rollback)).toHaveLength(1);
      }
      // A report after the cancel moves nothing, and a cancelled order never completes.
      await saga.shipment(order.id, "DELIVERED");
      await saga.booking(order.id, "TRAVELLED");
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const order of [racing, confirmed, fulfilling]) {
      const after = await saga.read(order.id);
      expect(after.status).toBe("CANCELLED");
      expect(after.rows).toEqual(rolledBack);
    }
  });

  it("cancels the order when the travel partner cancels the booking, and rolls the others back", async () => {
    const order = await saga.placeAndConfirm(["MUG-1", "TRIP-LIS"]);
    await saga.until(order.id, {
      status: "FULFILLING",
      rows: { travelium: "reserved", logistics: "waiting" },
    });
    await saga.booking(order.id, "CANCELLED");
    const vetoed = await saga.until(order.id, {
      status: "CANCELLED",
      rows: { finance: "refunded", logistics: "returned", travelium: "cancelled" },
    });
    expect(vetoed.cancellationReason).toMatch(/travelium/);
    expect(vetoed.events.filter((e) => e.type === "OrderCancelled")).toHaveLength(1);
    // The customer cancelling it afterwards gets it unchanged, with the veto's change as eventId.
    const again = await saga.cancel(order.id);
    expect(again.cancelOrder.order.status).toBe("CANCELLED");
    expect(again.cancelOrder.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await saga.read(order.id)).events.filter((e) => e.type === "OrderCancelled")).toHaveLength(1);
  });

  it("refuses a report for a module the order does not involve, or before the order is confirmed", async () => {
    const digital = await saga.placeAndConfirm(["EBOOK-1"]);
    expect(errorCode(await saga.shipment(digital.id, "DELIVERED"))).toBe("INVALID_TRANSITION");
    const pending = await saga.place(["MUG-1"]);
    expect(errorCode(await saga.shipment(pending.id, "PICKED"))).toBe("INVALID_TRANSITION");
  });
});
