import { randomUUID } from "node:crypto";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { and, count, eq, sql } from "drizzle-orm";
import { parse, print } from "graphql";
import { decodeJwt, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { orderEvents } from "../src/relay/tables.ts";
import { salesOrders } from "../src/statemachine/tables.ts";
import {
  CancelOrder,
  ConfirmPayment,
  OrderById,
  Orders,
  OrdersPage,
  PlaceOrder,
  Products,
  UpsertProduct,
} from "./support/operations.ts";
import {
  errorCode,
  type GraphQLResponse,
  gql,
  gqlData,
  type TestService,
  tokenFor,
  tokens,
  useTestService,
} from "./support/service.ts";
import { eventually } from "./support/wait.ts";

type Line = { sku: string; quantity: number };

/**
 * The rules of CONTRACT.md over HTTP, against one real service (PostgreSQL,
 * outbox, JetStream). The describe blocks run in file order: the ones that
 * compare whole-table row counts come first, while no confirmed or cancelled
 * order has module work still running in the background.
 */
describe("the public contract over HTTP", () => {
  const service = useTestService();
  let app: TestService;
  let url: string;

  beforeAll(() => {
    ({ app, url } = service);
  });

  const place = async (
    token: string | undefined,
    key: string,
    lines: Line[] = [{ sku: "EBOOK-1", quantity: 1 }],
    contactEmail = "ada@example.com",
  ) => gql(url, PlaceOrder, { input: { lines, contactEmail, idempotencyKey: key } }, token);

  const placed = async (token: string, key: string, lines: Line[] = [{ sku: "EBOOK-1", quantity: 1 }]) => {
    const result = await place(token, key, lines);
    if (result.errors?.length || !result.data)
      throw new Error(`placeOrder failed: ${JSON.stringify(result.errors)}`);
    return result.data.placeOrder;
  };

  const confirm = async (
    token: string | undefined,
    orderId: string,
    paymentReference: string,
    amount: number,
    currency = "EUR",
  ) => gql(url, ConfirmPayment, { input: { orderId, paymentReference, amount, currency } }, token);

  const readOrder = async (id: string, token?: string) =>
    (await gqlData(url, OrderById, { id }, token ?? (await tokens.admin()))).order;

  /** Whole-table row counts, straight from PostgreSQL. */
  const rowCounts = async () => {
    const database = app.service.database.db;
    const [orders] = await database.select({ n: count() }).from(salesOrders);
    const [events] = await database.select({ n: count() }).from(orderEvents);
    return { orders: orders!.n, events: events!.n };
  };

  const ordersOf = async (customerId: string) => {
    const [row] = await app.service.database.db
      .select({ n: count() })
      .from(salesOrders)
      .where(eq(salesOrders.customerId, customerId));
    return row!.n;
  };

  const stateChangesTo = async (orderId: string, to: string) => {
    const [row] = await app.service.database.db
      .select({ n: count() })
      .from(orderEvents)
      .where(
        and(
          eq(orderEvents.orderId, orderId),
          eq(orderEvents.type, "OrderStateChanged"),
          sql`${orderEvents.payload}->>'to' = ${to}`,
        ),
      );
    return row!.n;
  };

  describe("bad input changes nothing", () => {
    const cases: { name: string; lines: Line[]; email?: string; code: string }[] = [
      { name: "no lines", lines: [], code: "BAD_USER_INPUT" },
      { name: "quantity 0", lines: [{ sku: "EBOOK-1", quantity: 0 }], code: "BAD_USER_INPUT" },
      { name: "a negative quantity", lines: [{ sku: "MUG-1", quantity: -2 }], code: "BAD_USER_INPUT" },
      {
        name: "a bad email",
        lines: [{ sku: "EBOOK-1", quantity: 1 }],
        email: "not-an-email",
        code: "BAD_USER_INPUT",
      },
      {
        // PostgreSQL refuses NUL in text; the contract calls this a bad email, not an unexpected failure.
        name: "an email with a NUL byte",
        lines: [{ sku: "EBOOK-1", quantity: 1 }],
        email: "ada\u0000@example.com",
        code: "BAD_USER_INPUT",
      },
      { name: "an unknown SKU", lines: [{ sku: "NO-SUCH-SKU", quantity: 1 }], code: "NOT_FOUND" },
      {
        name: "an unknown SKU beside a known one",
        lines: [
          { sku: "MUG-1", quantity: 1 },
          { sku: "NO-SUCH-SKU", quantity: 1 },
        ],
        code: "NOT_FOUND",
      },
    ];

    for (const c of cases) {
      it(`${c.name}: ${c.code}, and no sales_orders or order_events row appears`, async () => {
        const customer = await tokens.customer();
        const before = await rowCounts();
        const result = await place(customer, `bad-${randomUUID()}`, c.lines, c.email);
        expect(result.errors).toHaveLength(1);
        expect(errorCode(result)).toBe(c.code);
        expect(result.data ?? null).toBeNull();
        expect(await rowCounts()).toEqual(before);
      });
    }

    it("a refused key stays free: the same key with good input then places an order", async () => {
      const customer = await tokens.customer();
      const key = `bad-then-good-${randomUUID()}`;
      expect(errorCode(await place(customer, key, [{ sku: "EBOOK-1", quantity: 0 }]))).toBe("BAD_USER_INPUT");
      const before = await rowCounts();
      const { order } = await placed(customer, key, [{ sku: "EBOOK-1", quantity: 1 }]);
      expect(order.status).toBe("PENDING");
      expect(order.total).toEqual({ amount: 1299, currency: "EUR" });
      // The counts the refusals are checked with do see a placement: one order, OrderStateChanged and OrderPlaced.
      expect(await rowCounts()).toEqual({ orders: before.orders + 1, events: before.events + 2 });
    });
  });

  describe("authentication and authorisation", () => {
    it("placeOrder with no token is UNAUTHENTICATED and places nothing", async () => {
      const before = await rowCounts();
      const result = await place(undefined, `anon-${randomUUID()}`);
      expect(errorCode(result)).toBe("UNAUTHENTICATED");
      expect(await rowCounts()).toEqual(before);
    });

    it("a token signed with another secret is UNAUTHENTICATED", async () => {
      const forged = await new SignJWT({ role: "customer", scopes: [] })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("customer-1")
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode("some-other-secret"));
      const before = await rowCounts();
      expect(errorCode(await place(forged, `forged-${randomUUID()}`))).toBe("UNAUTHENTICATED");
      expect(errorCode(await gql(url, Orders, {}, forged))).toBe("UNAUTHENTICATED");
      expect(await rowCounts()).toEqual(before);
    });

    it("an expired token is UNAUTHENTICATED, while the same claims unexpired are accepted", async () => {
      const expired = await tokenFor({ role: "customer", id: "customer-1" }, "-1 min");
      expect(decodeJwt(expired).exp).toBeLessThan(Date.now() / 1000);
      const before = await rowCounts();
      expect(errorCode(await place(expired, `expired-${randomUUID()}`))).toBe("UNAUTHENTICATED");
      expect(errorCode(await gql(url, Orders, {}, expired))).toBe("UNAUTHENTICATED");
      expect(await rowCounts()).toEqual(before);
      const fresh = await tokenFor({ role: "customer", id: "customer-1" }, "1h");
      expect((await gql(url, Orders, {}, fresh)).errors).toBeUndefined();
    });

    it("a malformed Authorization header is UNAUTHENTICATED", async () => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Basic dXNlcjpwYXNz" },
        body: JSON.stringify({ query: print(Orders), variables: {} }),
      });
      expect(errorCode((await response.json()) as GraphQLResponse<unknown>)).toBe("UNAUTHENTICATED");
    });

    it("confirmPayment is FORBIDDEN to a customer and to a logistics partner, and the order stays PENDING", async () => {
      const { order } = await placed(await tokens.customer(), `auth-confirm-${randomUUID()}`);
      for (const token of [await tokens.customer(), await tokens.logistics(), await tokens.travelium()]) {
        expect(errorCode(await confirm(token, order.id, `psp-${randomUUID()}`, 1299))).toBe("FORBIDDEN");
      }
      expect(errorCode(await confirm(undefined, order.id, `psp-${randomUUID()}`, 1299))).toBe(
        "UNAUTHENTICATED",
      );
      const after = await readOrder(order.id);
      expect(after?.status).toBe("PENDING");
      expect(await stateChangesTo(order.id, "confirmed")).toBe(0);
    });

    it("placeOrder is FORBIDDEN to a payments partner", async () => {
      const before = await rowCounts();
      const result = await place(await tokens.payments(), `partner-place-${randomUUID()}`);
      expect(errorCode(result)).toBe("FORBIDDEN");
      expect(await rowCounts()).toEqual(before);
      expect(await ordersOf("psp")).toBe(0);
    });

    it("another customer's order reads as null and is never in their list", async () => {
      const { order } = await placed(await tokens.customer(), `private-${randomUUID()}`);
      const other = await tokens.otherCustomer();
      // customer-2 has an order of their own, so the list is not trivially empty.
      const own = await placed(other, `own-${randomUUID()}`);

      const read = await gql(url, OrderById, { id: order.id }, other);
      expect(read.errors).toBeUndefined();
      expect(read.data).toEqual({ order: null });

      const list = await gqlData(url, Orders, { first: 100 }, other);
      const ids = list.orders.edges.map((e) => e.node.id);
      expect(ids).toContain(own.order.id);
      expect(ids).not.toContain(order.id);

      // The owner does see it.
      expect((await readOrder(order.id, await tokens.customer()))?.id).toBe(order.id);
    });

    it("another customer cancelling an order is NOT_FOUND and changes nothing", async () => {
      const owner = await tokens.customer();
      const { order } = await placed(owner, `cancel-other-${randomUUID()}`);
      const before = await readOrder(order.id);
      const result = await gql(
        url,
        CancelOrder,
        { input: { orderId: order.id, reason: "not mine" } },
        await tokens.otherCustomer(),
      );
      expect(errorCode(result)).toBe("NOT_FOUND");
      const after = await readOrder(order.id);
      expect(after?.status).toBe("PENDING");
      expect(after?.cancellationReason).toBeNull();
      expect(after?.events.map((e) => e.id)).toEqual(before?.events.map((e) => e.id));
      expect(await stateChangesTo(order.id, "cancelled")).toBe(0);
    });

    it("any partner may read any order by id", async () => {
      const { order } = await placed(await tokens.customer(), `partner-read-${randomUUID()}`);
      for (const token of [await tokens.payments(), await tokens.logistics(), await tokens.travelium()]) {
        const read = await gqlData(url, OrderById, { id: order.id }, token);
        expect(read.order?.id).toBe(order.id);
        expect(read.order?.customerId).toBe("customer-1");
      }
    });

    it("order needs a token", async () => {
      const { order } = await placed(await tokens.customer(), `anon-read-${randomUUID()}`);
      const result = await gql(url, OrderById, { id: order.id });
      expect(errorCode(result)).toBe("UNAUTHENTICATED");
      expect(result.data?.order ?? null).toBeNull();
    });

    it("products needs no token", async () => {
      const result = await gql(url, Products, {});
      expect(result.errors).toBeUndefined();
      expect(result.data?.products).toEqual(
        expect.arrayContaining([
          {
            sku: "EBOOK-1",
            name: expect.any(String),
            kind: "DIGITAL",
            price: { amount: 1299, currency: "EUR" },
          },
          {
            sku: "MUG-1",
            name: expect.any(String),
            kind: "PHYSICAL",
            price: { amount: 1500, currency: "EUR" },
          },
          {
            sku: "TRIP-LIS",
            name: expect.any(String),
            kind: "TRAVEL",
            price: { amount: 45000, currency: "EUR" },
          },
          {
            sku: "BOX-MONTHLY",
            name: expect.any(String),
            kind: "SUBSCRIPTION",
            price: { amount: 2900, currency: "EUR" },
          },
        ]),
      );
    });

    it("orders is FORBIDDEN to a partner", async () => {
      for (const token of [await tokens.payments(), await tokens.logistics()]) {
        const result = await gql(url, Orders, {}, token);
        expect(errorCode(result)).toBe("FORBIDDEN");
        expect(result.data ?? null).toBeNull();
      }
    });

    it("upsertProduct is FORBIDDEN to a customer and a partner; an admin's product can then be ordered", async () => {
      const sku = `API-${randomUUID().slice(0, 8)}`;
      const input = { sku, name: "API test poster", kind: "PHYSICAL" as const, price: 990, currency: "EUR" };
      for (const token of [await tokens.customer(), await tokens.payments()]) {
        expect(errorCode(await gql(url, UpsertProduct, { input }, token))).toBe("FORBIDDEN");
      }
      expect(errorCode(await gql(url, UpsertProduct, { input }))).toBe("UNAUTHENTICATED");
      const before = await gqlData(url, Products, {});
      expect(before.products.map((p) => p.sku)).not.toContain(sku);

      const saved = await gqlData(url, UpsertProduct, { input }, await tokens.admin());
      expect(saved.upsertProduct).toEqual({
        sku,
        name: "API test poster",
        kind: "PHYSICAL",
        price: { amount: 990, currency: "EUR" },
      });
      const after = await gqlData(url, Products, {});
      expect(after.products).toContainEqual(saved.upsertProduct);

      const { order } = await placed(await tokens.customer(), `new-product-${randomUUID()}`, [
        { sku, quantity: 3 },
      ]);
      expect(order.total).toEqual({ amount: 2970, currency: "EUR" });
      expect(order.requiredModules).toEqual(["finance", "logistics"]);
      const read = await readOrder(order.id);
      expect(read?.lines).toEqual([
        { sku, kind: "PHYSICAL", quantity: 3, unitPrice: { amount: 990, currency: "EUR" } },
      ]);
    });
  });

  describe("placeOrder idempotency", () => {
    it("the same caller and key return the same order and eventId, and one order exists", async () => {
      const customer = await tokenFor({ role: "customer", id: "customer-idem" });
      const key = `idem-${randomUUID()}`;
      const lines = [
        { sku: "MUG-1", quantity: 2 },
        { sku: "EBOOK-1", quantity: 1 },
      ];
      const first = await placed(customer, key, lines);
      const second = await placed(customer, key, lines);
      expect(second.order.id).toBe(first.order.id);
      expect(second.eventId).toBe(first.eventId);
      expect(first.order.total).toEqual({ amount: 4299, currency: "EUR" });

      expect(await ordersOf("customer-idem")).toBe(1);
      const list = await gqlData(url, Orders, { first: 100 }, customer);
      expect(list.orders.edges.map((e) => e.node.id)).toEqual([first.order.id]);
      // One placement: one OrderPlaced and one initial OrderStateChanged.
      const types = (await readOrder(first.order.id))!.events.map((e) => e.type);
      expect(types.filter((t) => t === "OrderPlaced")).toHaveLength(1);
      expect(await stateChangesTo(first.order.id, "pending")).toBe(1);
    });

    it("concurrent retries with one key place one order", async () => {
      const customer = await tokenFor({ role: "customer", id: "customer-race" });
      const key = `race-${randomUUID()}`;
      const results = await Promise.all(Array.from({ length: 6 }, () => placed(customer, key)));
      expect(new Set(results.map((r) => r.order.id)).size).toBe(1);
      expect(new Set(results.map((r) => r.eventId)).size).toBe(1);
      expect(await ordersOf("customer-race")).toBe(1);
    });

    it("the same key with other lines or another email is CONFLICT and changes nothing", async () => {
      const customer = await tokenFor({ role: "customer", id: "customer-conflict" });
      const key = `conflict-${randomUUID()}`;
      const first = await placed(customer, key, [{ sku: "EBOOK-1", quantity: 1 }]);
      const before = await rowCounts();
      expect(errorCode(await place(customer, key, [{ sku: "EBOOK-1", quantity: 2 }]))).toBe("CONFLICT");
      expect(errorCode(await place(customer, key, [{ sku: "MUG-1", quantity: 1 }]))).toBe("CONFLICT");
      expect(
        errorCode(await place(customer, key, [{ sku: "EBOOK-1", quantity: 1 }], "grace@example.com")),
      ).toBe("CONFLICT");
      expect(await rowCounts()).toEqual(before);
      expect(await ordersOf("customer-conflict")).toBe(1);
      const read = await readOrder(first.order.id);
      expect(read?.lines).toEqual([
        { sku: "EBOOK-1", kind: "DIGITAL", quantity: 1, unitPrice: { amount: 1299, currency: "EUR" } },
      ]);
      expect(read?.contactEmail).toBe("ada@example.com");
    });

    it("the same key used by another customer places a separate order", async () => {
      const key = `shared-key-${randomUUID()}`;
      const alice = await tokenFor({ role: "customer", id: "customer-alice" });
      const bob = await tokenFor({ role: "customer", id: "customer-bob" });
      const a = await placed(alice, key);
      const b = await placed(bob, key);
      expect(b.order.id).not.toBe(a.order.id);
      expect(b.eventId).not.toBe(a.eventId);
      expect(a.order.customerId).toBe("customer-alice");
      expect(b.order.customerId).toBe("customer-bob");
      expect(await ordersOf("customer-alice")).toBe(1);
      expect(await ordersOf("customer-bob")).toBe(1);
    });
  });

  describe("confirmPayment", () => {
    it("the same paymentReference twice returns the same eventId and confirms once", async () => {
      const { order } = await placed(await tokens.customer(), `pay-twice-${randomUUID()}`, [
        { sku: "MUG-1", quantity: 2 },
      ]);
      const payments = await tokens.payments();
      const first = await confirm(payments, order.id, "psp-twice", 3000);
      expect(first.errors).toBeUndefined();
      expect(["CONFIRMED", "FULFILLING", "COMPLETED"]).toContain(first.data?.confirmPayment.order.status);
      const second = await confirm(payments, order.id, "psp-twice", 3000);
      expect(second.errors).toBeUndefined();
      expect(second.data?.confirmPayment.eventId).toBe(first.data?.confirmPayment.eventId);
      expect(second.data?.confirmPayment.order.id).toBe(order.id);

      expect(await stateChangesTo(order.id, "confirmed")).toBe(1);
      const types = (await readOrder(order.id))!.events.map((e) => e.type);
      expect(types.filter((t) => t === "OrderConfirmed")).toHaveLength(1);
      // The eventId is the OrderStateChanged to confirmed.
      const [changed] = await app.service.database.db
        .select({ id: orderEvents.id })
        .from(orderEvents)
        .where(and(eq(orderEvents.orderId, order.id), sql`${orderEvents.payload}->>'to' = 'confirmed'`));
      expect(changed?.id).toBe(first.data?.confirmPayment.eventId);
    });

    it("an amount or currency that is not the order's total is BAD_USER_INPUT and the order stays PENDING", async () => {
      const { order } = await placed(await tokens.customer(), `pay-wrong-${randomUUID()}`, [
        { sku: "MUG-1", quantity: 1 },
      ]);
      const payments = await tokens.payments();
      const eventsBefore = (await readOrder(order.id))!.events.map((e) => e.id);
      for (const [amount, currency] of [
        [1499, "EUR"],
        [1501, "EUR"],
        [0, "EUR"],
        [1500, "USD"],
        [1500, "eur"],
      ] as const) {
        const result = await confirm(payments, order.id, `psp-wrong-${amount}-${currency}`, amount, currency);
        expect(errorCode(result), `${amount} ${currency}`).toBe("BAD_USER_INPUT");
      }
      const after = await readOrder(order.id);
      expect(after?.status).toBe("PENDING");
      expect(after?.events.map((e) => e.id)).toEqual(eventsBefore);
      expect(await stateChangesTo(order.id, "confirmed")).toBe(0);
      // The refusals did not burn a reference: the right amount confirms.
      const ok = await confirm(payments, order.id, "psp-wrong-1500-EUR", 1500, "EUR");
      expect(ok.errors).toBeUndefined();
      expect(["CONFIRMED", "FULFILLING"]).toContain(ok.data?.confirmPayment.order.status);
    });

    it("another paymentReference on a confirmed order is INVALID_TRANSITION and changes nothing", async () => {
      const { order } = await placed(await tokens.customer(), `pay-other-${randomUUID()}`, [
        { sku: "MUG-1", quantity: 1 },
      ]);
      const payments = await tokens.payments();
      const first = await confirm(payments, order.id, "psp-a", 1500);
      expect(first.errors).toBeUndefined();
      const again = await confirm(payments, order.id, "psp-b", 1500);
      expect(errorCode(again)).toBe("INVALID_TRANSITION");
      expect(await stateChangesTo(order.id, "confirmed")).toBe(1);
      // The first reference still replays.
      const replay = await confirm(payments, order.id, "psp-a", 1500);
      expect(replay.data?.confirmPayment.eventId).toBe(first.data?.confirmPayment.eventId);
    });

    it("concurrent callbacks with one paymentReference confirm once and answer one eventId", async () => {
      const { order } = await placed(await tokens.customer(), `pay-race-${randomUUID()}`, [
        { sku: "MUG-1", quantity: 1 },
      ]);
      const payments = await tokens.payments();
      const results = await Promise.all(
        Array.from({ length: 5 }, () => confirm(payments, order.id, "psp-race", 1500)),
      );
      for (const r of results) expect(r.errors).toBeUndefined();
      expect(new Set(results.map((r) => r.data?.confirmPayment.eventId)).size).toBe(1);
      expect(await stateChangesTo(order.id, "confirmed")).toBe(1);
    });

    it("an unknown order id is NOT_FOUND; a non-uuid id is NOT_FOUND", async () => {
      const payments = await tokens.payments();
      const before = await rowCounts();
      expect(errorCode(await confirm(payments, randomUUID(), "psp-ghost", 1299))).toBe("NOT_FOUND");
      expect(errorCode(await confirm(payments, "not-a-uuid", "psp-ghost", 1299))).toBe("NOT_FOUND");
      expect(errorCode(await confirm(payments, "'; drop table sales_orders; --", "psp-ghost", 1299))).toBe(
        "NOT_FOUND",
      );
      expect((await rowCounts()).orders).toBe(before.orders);
      // And reading such ids is null, not an error.
      const admin = await tokens.admin();
      expect(await gqlData(url, OrderById, { id: randomUUID() }, admin)).toEqual({ order: null });
      expect(await gqlData(url, OrderById, { id: "not-a-uuid" }, admin)).toEqual({ order: null });
    });
  });

  describe("cancelOrder", () => {
    it("cancelling a cancelled order returns it unchanged with the same eventId", async () => {
      const customer = await tokens.customer();
      const { order } = await placed(customer, `cancel-twice-${randomUUID()}`);
      const first = await gqlData(
        url,
        CancelOrder,
        { input: { orderId: order.id, reason: "changed my mind" } },
        customer,
      );
      expect(first.cancelOrder.order).toEqual({
        id: order.id,
        status: "CANCELLED",
        cancellationReason: "changed my mind",
      });
      const eventsAfterFirst = (await readOrder(order.id))!.events.map((e) => e.id);

      const second = await gqlData(
        url,
        CancelOrder,
        { input: { orderId: order.id, reason: "another reason" } },
        customer,
      );
      expect(second.cancelOrder.eventId).toBe(first.cancelOrder.eventId);
      expect(second.cancelOrder.order).toEqual({
        id: order.id,
        status: "CANCELLED",
        cancellationReason: "changed my mind",
      });
      // An admin's repeat is the same no-op.
      const third = await gqlData(
        url,
        CancelOrder,
        { input: { orderId: order.id, reason: "admin" } },
        await tokens.admin(),
      );
      expect(third.cancelOrder.eventId).toBe(first.cancelOrder.eventId);

      expect(await stateChangesTo(order.id, "cancelled")).toBe(1);
      const read = await readOrder(order.id);
      expect(read?.cancellationReason).toBe("changed my mind");
      // Nothing was enqueued by the repeats (module rollbacks of the first cancel may add their own rows, never OrderCancelled).
      expect(read!.events.filter((e) => e.type === "OrderCancelled")).toHaveLength(1);
      expect(read!.events.map((e) => e.id).slice(0, eventsAfterFirst.length)).toEqual(eventsAfterFirst);
    });

    it("a completed order is INVALID_TRANSITION and stays COMPLETED", async () => {
      const customer = await tokens.customer();
      const { order } = await placed(customer, `cancel-completed-${randomUUID()}`, [
        { sku: "EBOOK-1", quantity: 1 },
      ]);
      const paid = await confirm(await tokens.payments(), order.id, `psp-${randomUUID()}`, 1299);
      expect(paid.errors).toBeUndefined();
      await eventually(async () => (await readOrder(order.id))?.status === "COMPLETED", {
        what: "the order COMPLETED",
      });

      const result = await gql(
        url,
        CancelOrder,
        { input: { orderId: order.id, reason: "too late" } },
        customer,
      );
      expect(errorCode(result)).toBe("INVALID_TRANSITION");
      const read = await readOrder(order.id);
      expect(read?.status).toBe("COMPLETED");
      expect(read?.cancellationReason).toBeNull();
      expect(await stateChangesTo(order.id, "cancelled")).toBe(0);
    });

    it("an unknown or non-uuid order id is NOT_FOUND, even for an admin", async () => {
      const admin = await tokens.admin();
      for (const orderId of [randomUUID(), "not-a-uuid"]) {
        const result = await gql(url, CancelOrder, { input: { orderId, reason: "ghost" } }, admin);
        expect(errorCode(result), orderId).toBe("NOT_FOUND");
      }
    });
  });

  describe("orders pagination", () => {
    it("walks newest first with first + after, with no duplicate and no gap", async () => {
      const customerId = `customer-pages-${randomUUID().slice(0, 8)}`;
      const customer = await tokenFor({ role: "customer", id: customerId });
      const placedIds: string[] = [];
      for (let i = 0; i < 7; i++) placedIds.push((await placed(customer, `page-${i}`)).order.id);

      const seen: { id: string; createdAt: string }[] = [];
      const pages: number[] = [];
      let after: string | null | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const page = await gqlData(url, OrdersPage, { first: 3, after }, customer);
        const { edges, pageInfo } = page.orders;
        pages.push(edges.length);
        seen.push(...edges.map((e) => ({ id: e.node.id, createdAt: e.node.createdAt })));
        for (const e of edges) expect(e.node.customerId).toBe(customerId);
        expect(pageInfo.endCursor).toBe(edges.at(-1)?.cursor ?? null);
        if (!pageInfo.hasNextPage) break;
        after = pageInfo.endCursor;
      }
      expect(pages).toEqual([3, 3, 1]);
      expect(seen.map((s) => s.id)).toEqual([...placedIds].reverse());
      const times = seen.map((s) => Date.parse(s.createdAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));

      // The whole list in one page agrees with the walk.
      const all = await gqlData(url, Orders, { first: 100 }, customer);
      expect(all.orders.edges.map((e) => e.node.id)).toEqual(seen.map((s) => s.id));
      expect(all.orders.pageInfo.hasNextPage).toBe(false);
    });

    it("orders placed at once (equal timestamps possible) still page with no duplicate and no gap", async () => {
      const customerId = `customer-burst-${randomUUID().slice(0, 8)}`;
      const customer = await tokenFor({ role: "customer", id: customerId });
      const ids = (
        await Promise.all(Array.from({ length: 12 }, (_, i) => placed(customer, `burst-${i}`)))
      ).map((p) => p.order.id);

      const walked: string[] = [];
      let after: string | null | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const page = await gqlData(url, OrdersPage, { first: 5, after }, customer);
        walked.push(...page.orders.edges.map((e) => e.node.id));
        if (!page.orders.pageInfo.hasNextPage) break;
        after = page.orders.pageInfo.endCursor;
      }
      expect(walked).toHaveLength(12);
      expect(new Set(walked)).toEqual(new Set(ids));
      const all = await gqlData(url, OrdersPage, { first: 100 }, customer);
      expect(walked).toEqual(all.orders.edges.map((e) => e.node.id));
      const times = all.orders.edges.map((e) => Date.parse(e.node.createdAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));
    });

    it("walks back from the oldest with last + before, the same list in the same order", async () => {
      const customer = await tokenFor({ role: "customer", id: `customer-back-${randomUUID().slice(0, 8)}` });
      for (let i = 0; i < 5; i++) await placed(customer, `back-${i}`);
      const all = (await gqlData(url, Orders, { first: 100 }, customer)).orders.edges.map((e) => e.node.id);
      const Back = parse(`query ($last: Int, $before: String) {
        orders(last: $last, before: $before) {
          edges { node { id } }
          pageInfo { hasPreviousPage startCursor }
        }
      }`) as TypedDocumentNode<
        {
          orders: {
            edges: { node: { id: string } }[];
            pageInfo: { hasPreviousPage: boolean; startCursor: string | null };
          };
        },
        { last: number; before?: string | null }
      >;
      const pages: string[][] = [];
      let before: string | null | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const { orders } = await gqlData(url, Back, { last: 2, before }, customer);
        pages.unshift(orders.edges.map((e) => e.node.id));
        if (!orders.pageInfo.hasPreviousPage) break;
        before = orders.pageInfo.startCursor;
      }
      expect(pages.map((p) => p.length)).toEqual([1, 2, 2]);
      expect(pages.flat()).toEqual(all);
    });

    it("first: 0, first: -1 and first: 1000 are BAD_USER_INPUT", async () => {
      const customer = await tokens.customer();
      for (const first of [0, -1, 1000]) {
        const result = await gql(url, Orders, { first }, customer);
        expect(errorCode(result), `first: ${first}`).toBe("BAD_USER_INPUT");
      }
    });

    it("a cursor this API did not give out is BAD_USER_INPUT", async () => {
      const customer = await tokens.customer();
      const forged = Buffer.from(JSON.stringify(["2020-01-01T00:00:00.000Z", "not-a-uuid"])).toString(
        "base64url",
      );
      for (const after of ["garbage", "!!!", forged, Buffer.from("null").toString("base64url")]) {
        const result = await gql(url, Orders, { first: 5, after }, customer);
        expect(errorCode(result), `after: ${after}`).toBe("BAD_USER_INPUT");
      }
    });
  });

  describe("unexpected failures are masked", () => {
    /** The raw body, to look for what the typed helpers would hide. */
    const post = async (query: string, variables: Record<string, unknown>, token?: string) => {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      const text = await response.text();
      return { status: response.status, text, body: JSON.parse(text) as GraphQLResponse<unknown> };
    };

    const expectNoLeak = (text: string, body: GraphQLResponse<unknown>) => {
      expect(body.errors?.length).toBeGreaterThan(0);
      for (const error of body.errors ?? []) {
        const extensions = (error.extensions ?? {}) as Record<string, unknown>;
        expect(extensions).not.toHaveProperty("originalError");
        expect(extensions).not.toHaveProperty("stacktrace");
        expect(extensions).not.toHaveProperty("exception");
        expect(error).not.toHaveProperty("stack");
      }
      expect(text).not.toMatch(/\bat .+\.(ts|js):\d+/);
      expect(text).not.toMatch(/stack/i);
      expect(text).not.toMatch(
        /\b(insert into|select .* from|sales_orders|order_events|duplicate key|at or near)\b/i,
      );
      expect(text).not.toMatch(/node_modules|\/work\//);
    };

    it("a database failure (a NUL byte PostgreSQL refuses) answers a masked error and places nothing", async () => {
      const customer = await tokens.customer();
      const before = await ordersOf("customer-1");
      const { text, body } = await post(
        print(PlaceOrder),
        {
          input: {
            lines: [{ sku: "EBOOK-1", quantity: 1 }],
            contactEmail: "ada@example.com",
            idempotencyKey: `nul-\u0000-${randomUUID()}`,
          },
        },
        customer,
      );
      expectNoLeak(text, body);
      const code = errorCode(body);
      // A contract code, or the mask; never PostgreSQL's own words.
      expect(["INTERNAL_SERVER_ERROR", "BAD_USER_INPUT"]).toContain(code);
      if (code === "INTERNAL_SERVER_ERROR") expect(body.errors?.[0]?.message).toBe("Unexpected error.");
      expect(await ordersOf("customer-1")).toBe(before);
    });

    it("refusals and engine errors carry no stack either", async () => {
      const customer = await tokens.customer();
      const responses = [
        await post(
          print(PlaceOrder),
          { input: { lines: [], contactEmail: "x@y.z", idempotencyKey: "k" } },
          customer,
        ),
        await post(print(Orders), { first: 0 }, customer),
        await post(print(ConfirmPayment), {
          input: { orderId: randomUUID(), paymentReference: "p", amount: 1, currency: "EUR" },
        }),
        await post("query { nope }", {}, customer),
        await post("{ orders(first: ", {}, customer),
        await post(print(ConfirmPayment), { input: { orderId: randomUUID() } }, await tokens.payments()),
      ];
      for (const { text, body, status } of responses) {
        expect(status).toBeLessThan(500);
        expectNoLeak(text, body);
      }
    });
  });
});
