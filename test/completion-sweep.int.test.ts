import { randomUUID } from "node:crypto";
import { eq, inArray, sql } from "drizzle-orm";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { modules } from "../src/modules/index.ts";
import { logisticsShipments } from "../src/modules/logistics/table.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { CompletionSweep } from "../src/statemachine/completion-sweep.ts";
import { salesOrders } from "../src/statemachine/tables.ts";
import { graphql } from "./generated/index.ts";
import { createTestDatabase } from "./support/database.ts";
import { sagaClient } from "./support/saga.ts";
import { gqlData, tokens, useTestService } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const OrderDeadLetters = graphql(`
  query OrderDeadLetters($id: ID!) {
    order(id: $id) { id deadLetters { consumer eventType error attempts replayedAt settledAt } }
  }
`);

const DeadLetters = graphql(`
  query DeadLetters($consumer: String) {
    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }
  }
`);

describe("the completion sweep", () => {
  const service = useTestService({
    retry: { maxAttempts: 2, backoffMs: () => 20 },
    env: { COMPLETION_SWEEP_MS: "200" },
  });

  beforeAll(async () => {
    // A fault in the database, for the orders it names: completing them fails, whoever tries.
    await service.app.service.database.db.execute(sql`
      create table blocked_orders (order_id uuid primary key);
      create function refuse_completion() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from blocked_orders where order_id = new.id) then
          raise exception 'completion blocked for %', new.id;
        end if;
        return new;
      end $$;
      create trigger refuse_completion before update on sales_orders
        for each row when (new.status = 'completed') execute function refuse_completion();
    `);
  });

  it("completes an order whose orders-listener event was dead-lettered", async () => {
    const { url } = service;
    const db = service.app.service.database.db;
    const saga = sagaClient(url);
    const order = await saga.place(["EBOOK-1"]);
    await db.execute(sql`insert into blocked_orders values (${order.id})`);
    await saga.confirm(order);
    const admin = await tokens.admin();
    // Finance issues and pays at once (InvoiceIssued only passes through), so the orders listener makes both
    // moves in the transaction that hears InvoicePaid: the blocked completion rolls FULFILLING back with it.
    const letters = await eventually(
      async () => {
        const mine = (await gqlData(url, DeadLetters, { consumer: "orders" }, admin)).deadLetters.filter(
          (d) => d.orderId === order.id,
        );
        return mine.length === 1 ? mine : undefined;
      },
      { what: "the orders listener's dead letter" },
    );
    expect(letters.map((d) => d.eventType)).toEqual(["InvoicePaid"]);
    expect((await saga.read(order.id)).status).toBe("CONFIRMED");
    const onOrder = (await gqlData(url, OrderDeadLetters, { id: order.id }, admin)).order!.deadLetters;
    expect(onOrder).toHaveLength(1);
    for (const letter of onOrder) {
      expect(letter).toMatchObject({ consumer: "orders", attempts: 2, settledAt: null });
      expect(letter.error).toContain("completion blocked");
    }

    // The fault is gone; nobody replays the dead letter, and the order still completes.
    await db.execute(sql`delete from blocked_orders`);
    await saga.until(order.id, { status: "COMPLETED" });
  });
});

describe("one completion sweep", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  const logged: Record<string, unknown>[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => logged.push(JSON.parse(line)) });

  beforeAll(async () => {
    db = await createTestDatabase();
    database = await openDatabase({ url: db.url, dataDir: ".data/test" });
  });

  afterAll(async () => {
    await database?.close();
    await db?.drop();
  });

  /** A FULFILLING order that waits for logistics alone, its shipment in `state` since `ago` ms. */
  async function order(state: "shipped" | "delivered", ago: number): Promise<string> {
    const id = randomUUID();
    await database.db.insert(salesOrders).values({
      id,
      status: "fulfilling",
      customerId: "customer-1",
      contactEmail: "ada@example.com",
      totalAmount: 1500,
      currency: "EUR",
      requiredModules: ["logistics"],
      involvedModules: ["logistics"],
      idempotencyKey: id,
      requestHash: "-",
      placedEventId: randomUUID(),
    });
    const at = new Date(Date.now() - ago);
    await database.db.insert(logisticsShipments).values({
      orderId: id,
      state,
      pickList: [{ sku: "MUG-1", quantity: 1 }],
      createdAt: at,
      updatedAt: at,
    });
    return id;
  }

  it("moves the orders their rows call for, logs each, and leaves the orders listener its own", async () => {
    const stranded = await order("delivered", 60_000);
    const justDelivered = await order("delivered", 0);
    const onTheRoad = await order("shipped", 60_000);

    const sweep = new CompletionSweep({ db: database.db, modules, logger, quietMs: 5_000, pageSize: 2 });
    expect(await sweep.sweep()).toBe(1);

    const statuses = Object.fromEntries(
      (
        await database.db
          .select({ id: salesOrders.id, status: salesOrders.status })
          .from(salesOrders)
          .where(inArray(salesOrders.id, [stranded, justDelivered, onTheRoad]))
      ).map((o) => [o.id, o.status]),
    );
    expect(statuses).toEqual({
      [stranded]: "completed",
      [justDelivered]: "fulfilling",
      [onTheRoad]: "fulfilling",
    });
    // The same move the listener makes: its OrderStateChanged goes out through the outbox.
    const events = await database.db.select().from(orderEvents).where(eq(orderEvents.orderId, stranded));
    expect(events.map((e) => [e.type, e.payload.from, e.payload.to])).toEqual([
      ["OrderStateChanged", "fulfilling", "completed"],
    ]);
    expect(logged.filter((l) => l.orderId)).toEqual([
      expect.objectContaining({
        level: 40,
        orderId: stranded,
        from: "fulfilling",
        to: "completed",
        msg: "completion sweep moved an order the orders listener had not moved",
      }),
    ]);

    expect(await sweep.sweep()).toBe(0);
    await sweep.stop();
  });
});
