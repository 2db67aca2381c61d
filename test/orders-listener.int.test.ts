import { randomUUID } from "node:crypto";
import { asc, inArray, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { modules } from "../src/modules/index.ts";
import type { BusEvent } from "../src/relay/bus.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { ordersListener } from "../src/statemachine/orders-listener.ts";
import type { OrderStatus } from "../src/statemachine/states.ts";
import { salesOrders } from "../src/statemachine/tables.ts";
import { applyOrderMoves, queueOrderMoves } from "../src/statemachine/transition.ts";
import { createTestDatabase } from "./support/database.ts";
import { statementTexts } from "./support/statements.ts";

/** The module tables' rows the tests need, with the columns each table requires. */
const moduleTables: Record<string, { table: string; columns: string; values: string }> = {
  finance: { table: "finance_invoices", columns: "amount, currency", values: "1299, 'EUR'" },
  travelium: { table: "travelium_bookings", columns: "allotment_reference", values: "'ALLOT-1'" },
};

/**
 * The orders listener handed a whole batch of module row events, against
 * real PostgreSQL: what the batch costs in statements, and that it leaves the
 * same orders and outbox events as the events handled one at a time.
 */
describe("the orders listener, a batch at a time", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  const listener = ordersListener(modules);

  beforeAll(async () => {
    db = await createTestDatabase();
    database = await openDatabase({ url: db.url, dataDir: ".data/test" });
  });
  afterAll(async () => {
    await database?.close();
    await db?.drop();
  });

  /** An order in `status` whose modules' rows are `rows`, as their listeners would have written them. */
  async function order(status: OrderStatus, rows: Record<string, string>): Promise<string> {
    const id = randomUUID();
    await database.db.insert(salesOrders).values({
      id,
      status,
      customerId: "c-1",
      contactEmail: "ada@example.com",
      totalAmount: 1299,
      currency: "EUR",
      requiredModules: Object.keys(rows),
      involvedModules: Object.keys(rows),
      idempotencyKey: id,
      requestHash: "h",
      placedEventId: randomUUID(),
    });
    for (const [module, state] of Object.entries(rows)) {
      const { table, columns, values } = moduleTables[module]!;
      await database.db.execute(
        sql`insert into ${sql.raw(table)} (order_id, state, ${sql.raw(columns)}) values (${id}, ${state}, ${sql.raw(values)})`,
      );
    }
    return id;
  }

  const rowEvent = (orderId: string, module: string, state: string): BusEvent => ({
    id: randomUUID(),
    type: modules.find((m) => m.name === module)!.events[state]!,
    orderId,
    occurredAt: new Date().toISOString(),
    payload: { module, state, from: null, version: 2, cause: randomUUID() },
  });

  /**
   * `settled` orders whose invoice is paid, each with its InvoicePaid, and a
   * travel order whose booking was cancelled: its invoice's event, the
   * booking's veto, and the invoice's event again, between the others.
   */
  async function scenario(settled: number) {
    const paid = [];
    for (let i = 0; i < settled; i++) paid.push(await order("confirmed", { finance: "paid" }));
    const trip = await order("confirmed", { finance: "paid", travelium: "cancelled" });
    const events = paid.map((id) => rowEvent(id, "finance", "paid"));
    events.splice(1, 0, rowEvent(trip, "finance", "paid"));
    events.splice(3, 0, rowEvent(trip, "travelium", "cancelled"));
    events.push(rowEvent(trip, "finance", "paid"));
    return { orderIds: [...paid, trip], events };
  }

  /** The batch handled in one transaction; what it sent, by text, its COMMIT included. */
  async function inOneBatch(events: BusEvent[]): Promise<string[]> {
    return statementTexts(() => database.db.transaction((tx) => listener.handleBatch(tx, events)));
  }

  async function oneAtATime(events: BusEvent[]): Promise<void> {
    for (const event of events) await database.db.transaction((tx) => listener.handleBatch(tx, [event]));
  }

  /** Each order, in the given order: its row's state and cancellation, and its events as subscribers get them. */
  async function outcome(orderIds: string[]) {
    const orders = await database.db.select().from(salesOrders).where(inArray(salesOrders.id, orderIds));
    const events = await database.db
      .select()
      .from(orderEvents)
      .where(inArray(orderEvents.orderId, orderIds))
      .orderBy(asc(orderEvents.seq));
    return orderIds.map((id) => {
      const row = orders.find((o) => o.id === id)!;
      const own = events.filter((e) => e.orderId === id);
      const cancelled = own.find((e) => e.type === "OrderStateChanged" && e.payload.to === "cancelled");
      // The cancel's OrderStateChanged is the one a repeated cancel answers with.
      expect(row.cancelledEventId).toBe(cancelled?.id ?? null);
      return {
        status: row.status,
        cancellationReason: row.cancellationReason,
        events: own.map((e) => ({ type: e.type, payload: e.payload, actor: e.actor })),
      };
    });
  }

  it("moves every order of the batch in a constant number of statements, whatever their number", async () => {
    // A connection prepares a statement the first time it sends it; from then on the statement can go
    // with the COMMIT. The pool hands the connection just released back to the next transaction.
    await inOneBatch((await scenario(1)).events);
    const small = await scenario(3);
    const large = await scenario(15);
    const smallStatements = await inOneBatch(small.events);
    const largeStatements = await inOneBatch(large.events);
    console.info(
      `orders listener: ${small.events.length} events ${smallStatements.length} round trips, ${large.events.length} events ${largeStatements.length}`,
    );
    // Lock the orders with their module rows (with the BEGIN); one UPDATE of the orders with the outbox
    // insert, sent with the COMMIT.
    for (const statements of [smallStatements, largeStatements]) {
      expect(statements).toHaveLength(2);
      expect(statements[1]).toMatch(/^execute q\d+\(.*\); commit$/s);
    }
    const [settled] = await outcome(large.orderIds);
    expect(settled).toEqual({
      status: "completed",
      cancellationReason: null,
      events: [
        {
          type: "OrderStateChanged",
          payload: { from: "confirmed", to: "fulfilling", customerId: "c-1" },
          actor: null,
        },
        {
          type: "OrderStateChanged",
          payload: { from: "fulfilling", to: "completed", customerId: "c-1" },
          actor: null,
        },
      ],
    });
  });

  it("leaves the same orders and outbox events as the events handled one at a time", async () => {
    const batched = await scenario(6);
    const single = await scenario(6);
    await inOneBatch(batched.events);
    await oneAtATime(single.events);
    const expected = await outcome(single.orderIds);
    expect(await outcome(batched.orderIds)).toEqual(expected);
    const reason = "travelium vetoed the order (cancelled)";
    // The travel order: fulfilling on its invoice, then cancelled on the booking's veto, nothing on the repeat.
    expect(expected.at(-1)).toEqual({
      status: "cancelled",
      cancellationReason: reason,
      events: [
        {
          type: "OrderStateChanged",
          payload: { from: "confirmed", to: "fulfilling", customerId: "c-1" },
          actor: null,
        },
        {
          type: "OrderStateChanged",
          payload: { from: "fulfilling", to: "cancelled", customerId: "c-1", reason },
          actor: "module:travelium",
        },
        {
          type: "OrderCancelled",
          payload: { reason, from: "fulfilling", veto: "travelium" },
          actor: "module:travelium",
        },
      ],
    });
  });

  it("fails the batch when an order is not in the state its move started from, and writes nothing", async () => {
    const moving = await order("confirmed", { finance: "paid" });
    const changed = await order("cancelled", { finance: "paid" });
    await expect(
      database.db.transaction(async (tx) => {
        const locked = await tx
          .select()
          .from(salesOrders)
          .where(inArray(salesOrders.id, [moving, changed]))
          .for("update");
        const orders = new Map(locked.map((o) => [o.id, o]));
        await applyOrderMoves(tx, orders, [
          { orderId: moving, from: "confirmed", path: ["fulfilling", "completed"] },
          // Decided on a stale read: the order was cancelled meanwhile.
          { orderId: changed, from: "confirmed", path: ["fulfilling"] },
        ]);
      }),
    ).rejects.toThrow(/no longer in the state/);
    expect((await outcome([moving, changed])).map((o) => [o.status, o.events.length])).toEqual([
      ["confirmed", 0],
      ["cancelled", 0],
    ]);
  });

  /** Locks the orders, queues the moves; the transaction commits, or throws what its commit met. */
  async function queueMoves(
    orderIds: string[],
    moves: Parameters<typeof queueOrderMoves>[2],
    queued?: () => void,
  ) {
    await database.db.transaction(async (tx) => {
      const locked = await tx
        .select()
        .from(salesOrders)
        .where(inArray(salesOrders.id, orderIds))
        .for("update");
      await queueOrderMoves(tx, new Map(locked.map((o) => [o.id, o])), moves);
      queued?.();
    });
  }

  it("moves the orders with the commit when every one is where its move starts", async () => {
    const first = await order("confirmed", { finance: "paid" });
    const second = await order("confirmed", { finance: "paid" });
    await queueMoves(
      [first, second],
      [
        { orderId: first, from: "confirmed", path: ["fulfilling", "completed"] },
        { orderId: second, from: "confirmed", path: ["fulfilling"] },
      ],
    );
    expect((await outcome([first, second])).map((o) => [o.status, o.events.length])).toEqual([
      ["completed", 2],
      ["fulfilling", 1],
    ]);
  });

  it("fails the commit when moves sent with it find an order in another state, and writes nothing", async () => {
    // The connection prepares the statement the first time it sends it, at once; later ones go with the COMMIT.
    const earlier = await order("confirmed", { finance: "paid" });
    await queueMoves([earlier], [{ orderId: earlier, from: "confirmed", path: ["fulfilling"] }]);
    const moving = await order("confirmed", { finance: "paid" });
    const changed = await order("cancelled", { finance: "paid" });
    let queued = false;
    await expect(
      queueMoves(
        [moving, changed],
        [
          { orderId: moving, from: "confirmed", path: ["fulfilling", "completed"] },
          // Decided on a stale read: the order was cancelled meanwhile.
          { orderId: changed, from: "confirmed", path: ["fulfilling"] },
        ],
        // Sent with the COMMIT: the call answers before PostgreSQL has seen the statement.
        () => {
          queued = true;
        },
      ),
    ).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/no longer in the state their moves started from: 1 of 2/) },
    });
    expect(queued).toBe(true);
    expect((await outcome([moving, changed])).map((o) => [o.status, o.events.length])).toEqual([
      ["confirmed", 0],
      ["cancelled", 0],
    ]);
  });
});
