import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { CancelOrder, ConfirmPayment, PlaceOrder } from "./support/operations.ts";
import {
  deleteStream,
  errorCode,
  type GraphQLResponse,
  gql,
  startTestService,
  type TestService,
  tokenFor,
  tokens,
} from "./support/service.ts";
import { statementTexts } from "./support/statements.ts";
import { eventually } from "./support/wait.ts";

type Line = { sku: string; quantity: number };

describe("the hot mutations' round trips, and their races", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService;
  let url: string;
  let sql: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestService({ databaseUrl: db.url, natsPrefix: prefix, roles: "gateway" });
    url = app.url!;
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  afterAll(async () => {
    await sql?.end();
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  const customer = () => tokenFor({ role: "customer", id: "customer-cost" });

  const place = async (key: string, lines: Line[] = [{ sku: "MUG-1", quantity: 1 }]) => {
    const result = await gql(
      url,
      PlaceOrder,
      { input: { lines, contactEmail: "ada@example.com", idempotencyKey: key } },
      await customer(),
    );
    if (!result.data) throw new Error(`placeOrder failed: ${JSON.stringify(result.errors)}`);
    return result.data.placeOrder;
  };

  const confirm = async (orderId: string, paymentReference: string, amount = 1500) =>
    gql(
      url,
      ConfirmPayment,
      { input: { orderId, paymentReference, amount, currency: "EUR" } },
      await tokens.payments(),
    );

  const cancel = async (orderId: string, reason = "changed my mind") =>
    gql(url, CancelOrder, { input: { orderId, reason } }, await customer());

  const eventsOf = async (orderId: string) =>
    (
      await sql.query<{ id: string; type: string; payload: Record<string, unknown>; actor: string | null }>(
        "select id, type, payload, actor from order_events where order_id = $1 order by seq",
        [orderId],
      )
    ).rows;

  const orderRow = async (orderId: string) =>
    (await sql.query("select * from sales_orders where id = $1", [orderId])).rows[0];

  describe("statements per mutation: constant, none a transaction's", () => {
    it("placeOrder: one statement once the gateway knows the products, with one line or four, and a repeat costs the same", async () => {
      const everyModule = ["EBOOK-1", "MUG-1", "TRIP-LIS", "BOX-MONTHLY"].map((sku) => ({
        sku,
        quantity: 2,
      }));
      // The first order of a product reads it; the statement after it checks it is still as read.
      const first = await statementTexts(() => place(`cost-${randomUUID()}`, everyModule));
      expect(first).toHaveLength(2);
      expect(first[0]).toMatch(/from "products"/);

      const key = `cost-${randomUUID()}`;
      let placed: Awaited<ReturnType<typeof place>> | undefined;
      const one = await statementTexts(async () => {
        placed = await place(key);
      });
      const four = await statementTexts(() => place(`cost-${randomUUID()}`, everyModule));
      const repeat = await statementTexts(async () => {
        const again = await place(key);
        expect(again.order.id).toBe(placed!.order.id);
        expect(again.eventId).toBe(placed!.eventId);
      });
      console.info(
        `SQL statements: placeOrder ${one.length}, with four lines ${four.length}, repeated ${repeat.length}`,
      );
      for (const texts of [one, four, repeat]) {
        expect(texts).toHaveLength(1);
        expect(texts.filter((t) => /^\s*(begin|commit)\b/i.test(t))).toEqual([]);
      }

      // What one statement wrote: the order, its line, and its two events as consumers know them.
      const orderId = placed!.order.id;
      expect(
        (await sql.query("select sku, position from order_lines where order_id = $1", [orderId])).rows,
      ).toEqual([{ sku: "MUG-1", position: 0 }]);
      expect(await eventsOf(orderId)).toEqual([
        {
          id: placed!.eventId,
          type: "OrderStateChanged",
          payload: { from: null, to: "pending", customerId: "customer-cost" },
          actor: "customer:customer-cost",
        },
        {
          id: expect.any(String),
          type: "OrderPlaced",
          payload: {
            customerId: "customer-cost",
            lines: [
              {
                sku: "MUG-1",
                name: "Netorigo mug",
                kind: "physical",
                quantity: 1,
                unitAmount: 1500,
                currency: "EUR",
              },
            ],
            totalAmount: 1500,
            currency: "EUR",
            involvedModules: ["finance", "logistics"],
            requiredModules: ["finance", "logistics"],
          },
          actor: "customer:customer-cost",
        },
      ]);
    });

    it("placeOrder with a key reused for other input is CONFLICT and writes nothing", async () => {
      const key = `cost-conflict-${randomUUID()}`;
      await place(key);
      const before = (await sql.query("select count(*)::int as n from order_events")).rows[0].n;
      const result = await gql(
        url,
        PlaceOrder,
        {
          input: {
            lines: [{ sku: "MUG-1", quantity: 2 }],
            contactEmail: "ada@example.com",
            idempotencyKey: key,
          },
        },
        await customer(),
      );
      expect(errorCode(result)).toBe("CONFLICT");
      expect((await sql.query("select count(*)::int as n from order_events")).rows[0].n).toBe(before);
    });

    it("confirmPayment of an order this gateway placed: one statement; a replay only the read", async () => {
      const { order } = await place(`cost-confirm-${randomUUID()}`);
      let eventId: string | undefined;
      const first = await statementTexts(async () => {
        const result = await confirm(order.id, "psp-cost");
        expect(result.errors).toBeUndefined();
        eventId = result.data?.confirmPayment.eventId;
      });
      const replay = await statementTexts(async () => {
        const result = await confirm(order.id, "psp-cost");
        expect(result.data?.confirmPayment.eventId).toBe(eventId);
      });
      console.info(`SQL statements: confirmPayment ${first.length}, replayed ${replay.length}`);
      expect(first).toHaveLength(1);
      expect(replay).toHaveLength(1);
      expect([...first, ...replay].filter((t) => /^\s*(begin|commit)\b/i.test(t))).toEqual([]);

      expect(await orderRow(order.id)).toMatchObject({
        status: "confirmed",
        payment_reference: "psp-cost",
        confirmed_event_id: eventId,
      });
      expect((await eventsOf(order.id)).slice(2)).toEqual([
        {
          id: eventId,
          type: "OrderStateChanged",
          payload: { from: "pending", to: "confirmed", customerId: "customer-cost" },
          actor: "partner:psp",
        },
        {
          id: expect.any(String),
          type: "OrderConfirmed",
          payload: {
            paymentReference: "psp-cost",
            amount: 1500,
            currency: "EUR",
            lines: [{ sku: "MUG-1", kind: "physical", quantity: 1 }],
            involvedModules: ["finance", "logistics"],
          },
          actor: "partner:psp",
        },
      ]);
    });

    it("a product repriced behind the gateway: the placement's statement finds out, and the order takes the new price", async () => {
      const sku = `COST-${randomUUID().slice(0, 8)}`;
      await sql.query(
        "insert into products (sku, name, kind, price_amount, currency) values ($1, 'Cost mug', 'physical', 1000, 'EUR')",
        [sku],
      );
      const before = await place(`reprice-${randomUUID()}`, [{ sku, quantity: 1 }]);
      expect(before.order.total).toMatchObject({ amount: 1000 });
      // As another gateway's upsertProduct would: this one still knows the product at 1000.
      await sql.query("update products set price_amount = 1200, updated_at = now() where sku = $1", [sku]);
      let after: Awaited<ReturnType<typeof place>> | undefined;
      const texts = await statementTexts(async () => {
        after = await place(`reprice-${randomUUID()}`, [{ sku, quantity: 1 }]);
      });
      expect(after!.order.total).toMatchObject({ amount: 1200 });
      // The placement priced at 1000 wrote nothing; the products read again; the placement at 1200.
      expect(texts).toHaveLength(3);
      expect(texts[1]).toMatch(/from "products"/);
      const lines = await sql.query("select unit_amount from order_lines where order_id = $1", [
        after!.order.id,
      ]);
      expect(lines.rows).toEqual([{ unit_amount: 1200 }]);
      expect(await eventsOf(after!.order.id)).toHaveLength(2);
    });

    it("a payment for an order that moved behind the gateway: the guard misses, the order is read, and nothing is confirmed", async () => {
      const { order } = await place(`moved-${randomUUID()}`);
      // As another gateway's cancel would: this one still knows the order as PENDING.
      await sql.query("update sales_orders set status = 'cancelled' where id = $1", [order.id]);
      let code: string | undefined;
      const texts = await statementTexts(async () => {
        code = errorCode(await confirm(order.id, "psp-late"));
      });
      expect(code).toBe("INVALID_TRANSITION");
      expect(texts).toHaveLength(2);
      expect(texts[0]).toMatch(/^with moved as \(update/);
      expect((await orderRow(order.id)).payment_reference).toBeNull();
      expect((await eventsOf(order.id)).map((e) => e.type)).toEqual(["OrderStateChanged", "OrderPlaced"]);
    });

    it("a payment that is not the order's total sends only the read and changes nothing", async () => {
      const { order } = await place(`cost-wrong-${randomUUID()}`);
      let code: string | undefined;
      const texts = await statementTexts(async () => {
        code = errorCode(await confirm(order.id, "psp-wrong", 1499));
      });
      expect(code).toBe("BAD_USER_INPUT");
      expect(texts).toHaveLength(1);
      expect((await orderRow(order.id)).status).toBe("pending");
      expect(await eventsOf(order.id)).toHaveLength(2);
    });

    it("cancelOrder: the order and one statement; cancelling again only the read", async () => {
      const { order } = await place(`cost-cancel-${randomUUID()}`);
      let eventId: string | undefined;
      const first = await statementTexts(async () => {
        eventId = (await cancel(order.id)).data?.cancelOrder.eventId;
      });
      const again = await statementTexts(async () => {
        expect((await cancel(order.id)).data?.cancelOrder.eventId).toBe(eventId);
      });
      console.info(`SQL statements: cancelOrder ${first.length}, repeated ${again.length}`);
      expect(first).toHaveLength(2);
      expect(again).toHaveLength(1);
      expect((await eventsOf(order.id)).slice(2)).toEqual([
        {
          id: eventId,
          type: "OrderStateChanged",
          payload: {
            from: "pending",
            to: "cancelled",
            customerId: "customer-cost",
            reason: "changed my mind",
          },
          actor: "customer:customer-cost",
        },
        {
          id: expect.any(String),
          type: "OrderCancelled",
          payload: { reason: "changed my mind", from: "pending" },
          actor: "customer:customer-cost",
        },
      ]);
    });
  });

  /**
   * Two commands that both read the order before either moves it: the order's
   * row is held locked by another transaction until both wait on their guarded
   * UPDATE, then let go. The one that moves it second finds the guard matched
   * nothing, reads again and decides again.
   */
  describe("racing commands on one order", () => {
    async function race<A, B>(orderId: string, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query("begin");
        await holder.query("select 1 from sales_orders where id = $1 for update", [orderId]);
        const both = Promise.all([a(), b()]);
        await eventually(
          async () =>
            (
              await sql.query(
                `select count(*)::int as n from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock' and query like 'with moved as (update %'`,
              )
            ).rows[0].n === 2,
          { what: "both commands waiting on the order's row" },
        );
        await holder.query("rollback");
        return await both;
      } finally {
        await holder.end();
      }
    }

    const stateChanges = (events: Awaited<ReturnType<typeof eventsOf>>) =>
      events.filter((e) => e.type === "OrderStateChanged").map((e) => [e.payload.from, e.payload.to]);

    it("two confirmations with other references: one confirms, the other is INVALID_TRANSITION", async () => {
      const { order } = await place(`race-other-${randomUUID()}`);
      const [a, b] = await race(
        order.id,
        () => confirm(order.id, "psp-a"),
        () => confirm(order.id, "psp-b"),
      );
      const results = [a, b] as GraphQLResponse<{ confirmPayment: { eventId: string } }>[];
      const won = results.filter((r) => r.errors === undefined);
      expect(won).toHaveLength(1);
      expect(results.map(errorCode).filter(Boolean)).toEqual(["INVALID_TRANSITION"]);
      const winner = won[0] === a ? "psp-a" : "psp-b";

      const events = await eventsOf(order.id);
      expect(stateChanges(events)).toEqual([
        [null, "pending"],
        ["pending", "confirmed"],
      ]);
      const confirmed = events.filter((e) => e.type === "OrderConfirmed");
      expect(confirmed.map((e) => e.payload.paymentReference)).toEqual([winner]);
      expect(await orderRow(order.id)).toMatchObject({
        status: "confirmed",
        payment_reference: winner,
        confirmed_event_id: won[0]!.data!.confirmPayment.eventId,
      });
    });

    it("two confirmations with one reference: one confirms, the other reads again and answers the same", async () => {
      const { order } = await place(`race-same-${randomUUID()}`);
      const [a, b] = await race(
        order.id,
        () => confirm(order.id, "psp-same"),
        () => confirm(order.id, "psp-same"),
      );
      expect(a.errors).toBeUndefined();
      expect(b.errors).toBeUndefined();
      expect(b.data?.confirmPayment.eventId).toBe(a.data?.confirmPayment.eventId);
      const events = await eventsOf(order.id);
      expect(stateChanges(events)).toEqual([
        [null, "pending"],
        ["pending", "confirmed"],
      ]);
      expect(events.filter((e) => e.type === "OrderConfirmed")).toHaveLength(1);
    });

    it("a confirmation and a cancel: whichever comes second sees the first's order, one chain of events", async () => {
      const { order } = await place(`race-cancel-${randomUUID()}`);
      const [confirmed, cancelled] = await race(
        order.id,
        () => confirm(order.id, "psp-c"),
        () => cancel(order.id),
      );
      // The cancel always succeeds: from PENDING, or from CONFIRMED when the payment got there first.
      expect(cancelled.errors).toBeUndefined();
      const events = await eventsOf(order.id);
      const cancelledEvents = events.filter((e) => e.type === "OrderCancelled");
      expect(cancelledEvents).toHaveLength(1);
      if (confirmed.errors === undefined) {
        expect(stateChanges(events)).toEqual([
          [null, "pending"],
          ["pending", "confirmed"],
          ["confirmed", "cancelled"],
        ]);
        expect(cancelledEvents[0]!.payload.from).toBe("confirmed");
        expect(events.filter((e) => e.type === "OrderConfirmed")).toHaveLength(1);
      } else {
        expect(errorCode(confirmed)).toBe("INVALID_TRANSITION");
        expect(stateChanges(events)).toEqual([
          [null, "pending"],
          ["pending", "cancelled"],
        ]);
        expect(cancelledEvents[0]!.payload.from).toBe("pending");
        expect(events.filter((e) => e.type === "OrderConfirmed")).toHaveLength(0);
      }
      expect(await orderRow(order.id)).toMatchObject({
        status: "cancelled",
        cancelled_event_id: cancelled.data?.cancelOrder.eventId,
      });
    });

    it("two cancels: one cancels, the other answers the cancelled order with the same eventId", async () => {
      const { order } = await place(`race-cancels-${randomUUID()}`);
      const [a, b] = await race(
        order.id,
        () => cancel(order.id, "first"),
        () => cancel(order.id, "second"),
      );
      expect(a.errors).toBeUndefined();
      expect(b.errors).toBeUndefined();
      expect(b.data?.cancelOrder.eventId).toBe(a.data?.cancelOrder.eventId);
      const events = await eventsOf(order.id);
      expect(stateChanges(events)).toEqual([
        [null, "pending"],
        ["pending", "cancelled"],
      ]);
      expect(events.filter((e) => e.type === "OrderCancelled")).toHaveLength(1);
    });
  });
});
