import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { assignments, rowValues, wholeRow } from "../src/db/rows.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { salesOrders } from "../src/statemachine/tables.ts";
import { createTestDatabase } from "./support/database.ts";

/** Rows written and read by SQL templates come out as the query builder's, on both drivers. */
describe.each(["postgres", "pglite"] as const)("whole rows on %s", (kind) => {
  const closing: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closing.reverse()) await close();
  });

  async function open(): Promise<Database> {
    if (kind === "postgres") {
      const db = await createTestDatabase();
      const database = await openDatabase({ url: db.url, dataDir: ".data/test" });
      closing.push(
        () => db.drop(),
        () => database.close(),
      );
      return database;
    }
    const dir = await mkdtemp(join(tmpdir(), "rows-"));
    const database = await openDatabase({ dataDir: dir });
    closing.push(
      () => rm(dir, { recursive: true, force: true }),
      () => database.close(),
    );
    return database;
  }

  it("reads, inserts and updates an order as the query builder does", async () => {
    const { db } = await open();
    const order = wholeRow(salesOrders);
    const id = randomUUID();
    const values = {
      id,
      status: "pending" as const,
      customerId: "c-1",
      contactEmail: "ada@example.com",
      totalAmount: 2598,
      currency: "EUR",
      requiredModules: ["finance"],
      involvedModules: ["finance", "logistics"],
      idempotencyKey: 'k, with "quotes" and {braces}',
      requestHash: "h",
      placedEventId: randomUUID(),
      createdAt: new Date("2026-01-02T03:04:05.678Z"),
    };
    const [inserted] = await order.all(
      db,
      sql`insert into ${salesOrders} ${rowValues(salesOrders, values)} returning ${order.columns}`,
    );
    const [built] = await db.select().from(salesOrders).where(eq(salesOrders.id, id));
    expect(inserted).toEqual(built);
    expect(built).toMatchObject(values);
    expect(built!.updatedAt).toBeInstanceOf(Date);

    const [updated] = await order.all(
      db,
      sql`update ${salesOrders} set ${assignments(salesOrders, { status: "confirmed", paymentReference: null, updatedAt: new Date("2026-01-03T00:00:00Z") })}
        where ${salesOrders.id} = ${id} returning ${order.columns}`,
    );
    expect(updated).toEqual((await db.select().from(salesOrders).where(eq(salesOrders.id, id)))[0]);
    expect(updated).toMatchObject({ status: "confirmed", paymentReference: null });
    expect(updated!.updatedAt.toISOString()).toBe("2026-01-03T00:00:00.000Z");
  });

  it("reads jsonb and bigint columns as the query builder does", async () => {
    const { db } = await open();
    const events = wholeRow(orderEvents);
    const id = randomUUID();
    await db.insert(orderEvents).values({
      id,
      orderId: randomUUID(),
      type: "Probe",
      payload: { nested: { list: [1, "two", null] }, text: "it's" },
    });
    const [read] = await events.all(db, sql`select ${events.columns} from ${orderEvents} where id = ${id}`);
    expect(read).toEqual((await db.select().from(orderEvents).where(eq(orderEvents.id, id)))[0]);
  });
});
