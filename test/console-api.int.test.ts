/**
 * What the operators' console reads, over GraphQL (admins only) and
 * /metrics, and the /console route that serves the page.
 */
import { describe, expect, it } from "vitest";
import { graphql } from "./generated/index.ts";
import { CancelOrder } from "./support/operations.ts";
import { ReportShipment, sagaClient } from "./support/saga.ts";
import { errorCode, gql, gqlData, tokenFor, tokens, useTestService } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const Counts = graphql(`
  query ConsoleCounts { orderCounts { status count } }
`);

const PerSecond = graphql(`
  query ConsolePerSecond($seconds: Int) { ordersPerSecond(seconds: $seconds) { at placed completed } }
`);

const Health = graphql(`
  query ConsoleHealth($stuckAfterSeconds: Int) {
    pipelineHealth(stuckAfterSeconds: $stuckAfterSeconds) {
      outboxWaiting outboxLagSeconds deadLettersWaiting parkedEvents stuckAfterSeconds stuckOrderCount
      consumers { consumer waiting inFlight }
      stuckOrders { unmovedSeconds waitingFor order { id status } }
    }
  }
`);

const Find = graphql(`
  query ConsoleFind($search: String!, $first: Int) { findOrders(search: $search, first: $first) { id } }
`);

const Inspect = graphql(`
  query ConsoleInspect($id: ID!) {
    order(id: $id) {
      status
      events { type actor { kind id } }
      notifications { kind status recipient sentAt }
    }
  }
`);

const customerEvents = graphql(`
  query ConsoleCustomerEvents($id: ID!) { order(id: $id) { events { type actor { kind id } } } }
`);

describe("the console's reads", () => {
  const service = useTestService({ env: { STUCK_ORDER_AFTER_MS: "1000" } });
  const saga = () => sagaClient(service.url);
  const timeline = async (id: string) =>
    (await gqlData(service.url, Inspect, { id }, await tokens.admin())).order!.events.map(
      (e) => `${e.type} ${e.actor.kind} ${e.actor.id}`,
    );

  it("names who caused each event of a timeline", async () => {
    const digital = await saga().placeAndConfirm(["EBOOK-1"]);
    await saga().until(digital.id, { status: "COMPLETED" });
    expect(await timeline(digital.id)).toEqual([
      "OrderStateChanged CUSTOMER customer-1",
      "OrderPlaced CUSTOMER customer-1",
      "OrderStateChanged PARTNER psp",
      "OrderConfirmed PARTNER psp",
      "InvoiceIssued MODULE finance",
      "InvoicePaid MODULE finance",
      "OrderStateChanged MODULE orders",
      "OrderStateChanged MODULE orders",
    ]);

    const parcel = await saga().placeAndConfirm(["MUG-1"]);
    await saga().until(parcel.id, { status: "FULFILLING" });
    await gqlData(
      service.url,
      ReportShipment,
      { input: { orderId: parcel.id, state: "PICKED" as never, idempotencyKey: "pick-1" } },
      await tokens.logistics(),
    );
    await eventually(async () => (await timeline(parcel.id)).includes("ShipmentPicked MODULE logistics"), {
      what: "the parcel picked",
    });
    const admin = await tokenFor({ role: "admin", id: "ops-1" });
    await gqlData(service.url, CancelOrder, { input: { orderId: parcel.id, reason: "fraud" } }, admin);
    const events = await eventually(
      async () => {
        const all = await timeline(parcel.id);
        return all.some((e) => e.startsWith("ShipmentReturned")) ? all : undefined;
      },
      { what: "the parcel returned" },
    );
    expect(events).toContain("ShipmentReported PARTNER carrier");
    expect(events).toContain("OrderCancelled ADMIN ops-1");
    expect(events).toContain("ShipmentReturned MODULE logistics");
    // The timeline is the customer's to read too, with who caused each event; only an admin reads
    // a partner's or an admin's id.
    const own = await gqlData(service.url, customerEvents, { id: parcel.id }, await tokens.customer());
    const seen = own.order!.events.map((e) => `${e.type} ${e.actor.kind} ${e.actor.id}`);
    expect(seen).toContain("OrderPlaced CUSTOMER customer-1");
    expect(seen).toContain("ShipmentReported PARTNER ");
    expect(seen).toContain("OrderCancelled ADMIN ");
    expect(seen).toContain("ShipmentReturned MODULE logistics");
  });

  it("lists an order's emails, for admins only", async () => {
    const order = await saga().placeAndConfirm(["EBOOK-1"]);
    await saga().until(order.id, { status: "COMPLETED" });
    const sent = await eventually(
      async () => {
        const { order: o } = await gqlData(service.url, Inspect, { id: order.id }, await tokens.admin());
        return o!.notifications.length === 2 && o!.notifications.every((n) => n.status === "SENT")
          ? o!.notifications
          : undefined;
      },
      { what: "both emails sent" },
    );
    expect(sent.map((n) => [n.kind, n.recipient])).toEqual([
      ["CONFIRMED", "ada@example.com"],
      ["COMPLETED", "ada@example.com"],
    ]);
    expect(errorCode(await gql(service.url, Inspect, { id: order.id }, await tokens.customer()))).toBe(
      "FORBIDDEN",
    );
  });

  it("finds orders by id, id prefix, customer and contact email", async () => {
    const admin = await tokens.admin();
    const other = await tokenFor({ role: "customer", id: "finder-7" });
    const placed = await saga().place(["EBOOK-1"], other);
    const find = async (search: string) =>
      (await gqlData(service.url, Find, { search }, admin)).findOrders.map((o) => o.id);
    expect(await find(placed.id)).toEqual([placed.id]);
    expect(await find(placed.id.toUpperCase())).toEqual([placed.id]);
    expect(await find(placed.id.slice(0, 8))).toContain(placed.id);
    expect(await find("finder-7")).toEqual([placed.id]);
    expect(await find("ada@example.com")).toContain(placed.id);
    expect(await find("nobody@example.com")).toEqual([]);
    expect(errorCode(await gql(service.url, Find, { search: "x", first: 0 }, admin))).toBe("BAD_USER_INPUT");
    expect(errorCode(await gql(service.url, Find, { search: "  " }, admin))).toBe("BAD_USER_INPUT");
    expect(errorCode(await gql(service.url, Find, { search: "finder-7" }, other))).toBe("FORBIDDEN");
    expect(errorCode(await gql(service.url, Find, { search: "finder-7" }))).toBe("UNAUTHENTICATED");
  });

  it("counts orders by state and per second, and shows the pipeline's health with what stuck orders wait for", async () => {
    const admin = await tokens.admin();
    const unpaid = await saga().place(["EBOOK-1"]);
    const parcel = await saga().placeAndConfirm(["MUG-1"]);
    await saga().until(parcel.id, { status: "FULFILLING" });

    const { orderCounts } = await gqlData(service.url, Counts, {}, admin);
    expect(orderCounts.map((c) => c.status)).toEqual([
      "PENDING",
      "CONFIRMED",
      "FULFILLING",
      "COMPLETED",
      "CANCELLED",
    ]);
    const count = (status: string) => orderCounts.find((c) => c.status === status)!.count;
    expect(count("PENDING")).toBeGreaterThanOrEqual(1);
    expect(count("FULFILLING")).toBeGreaterThanOrEqual(1);
    expect(count("COMPLETED")).toBe(2);

    const { ordersPerSecond } = await gqlData(service.url, PerSecond, { seconds: 600 }, admin);
    expect(ordersPerSecond).toHaveLength(600);
    const sum = (key: "placed" | "completed") => ordersPerSecond.reduce((n, s) => n + s[key], 0);
    expect(sum("completed")).toBe(2);
    expect(sum("placed")).toBe(orderCounts.reduce((n, c) => n + c.count, 0));
    expect(errorCode(await gql(service.url, PerSecond, { seconds: 3601 }, admin))).toBe("BAD_USER_INPUT");

    // Past the threshold (1 s here) the unpaid order waits for its payment, the parcel for the carrier.
    const health = await eventually(
      async () => {
        const { pipelineHealth } = await gqlData(service.url, Health, {}, admin);
        const ids = pipelineHealth.stuckOrders.map((s) => s.order.id);
        return ids.includes(unpaid.id) && ids.includes(parcel.id) ? pipelineHealth : undefined;
      },
      { what: "both orders stuck" },
    );
    expect(health.stuckAfterSeconds).toBe(1);
    const stuck = (id: string) => health.stuckOrders.find((s) => s.order.id === id)!;
    expect(stuck(unpaid.id).waitingFor).toEqual(["payment"]);
    expect(stuck(parcel.id).waitingFor).toEqual(["logistics"]);
    expect(stuck(unpaid.id).unmovedSeconds).toBeGreaterThan(1);
    expect(health.stuckOrderCount).toBe(health.stuckOrders.length);
    expect(health.consumers.map((c) => c.consumer)).toEqual([
      "finance",
      "logistics",
      "notifier",
      "orders",
      "subscription",
      "travelium",
    ]);
    for (const c of health.consumers) expect(c.waiting).toBeGreaterThanOrEqual(0);
    expect(health.outboxLagSeconds).toBeGreaterThanOrEqual(0);
    expect([health.deadLettersWaiting, health.parkedEvents]).toEqual([0, 0]);
    // A longer threshold asked for: nothing here is that old.
    const patient = await gqlData(service.url, Health, { stuckAfterSeconds: 3600 }, admin);
    expect(patient.pipelineHealth.stuckOrders).toEqual([]);
    expect(errorCode(await gql(service.url, Health, {}, await tokens.customer()))).toBe("FORBIDDEN");

    const metrics = await (await fetch(service.url.replace(/\/graphql$/, "/metrics"))).text();
    const gauge = (line: RegExp) => Number(line.exec(metrics)?.[1]);
    expect(gauge(/^orders_by_state\{state="completed"\} (\d+)/m)).toBe(2);
    expect(gauge(/^orders_stuck (\d+)/m)).toBeGreaterThanOrEqual(2);
    expect(gauge(/^orders_outbox_lag_seconds ([\d.e-]+)/m)).toBeGreaterThanOrEqual(0);
    expect(gauge(/^orders_outbox_waiting (\d+)/m)).toBeGreaterThanOrEqual(0);
    expect(gauge(/^orders_consumer_waiting\{consumer="finance"\} (\d+)/m)).toBeGreaterThanOrEqual(0);
  });

  it("serves the console as a static page that may talk to its own origin only", async () => {
    const base = service.url.replace(/\/graphql$/, "");
    const page = await fetch(`${base}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const policy = page.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    const html = await page.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${base}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toMatch(/^text\/javascript/);
    for (const path of [
      "/console/assets/..%2F..%2Fpackage.json",
      "/console/../package.json",
      "/console/nope.js",
    ])
      expect((await fetch(`${base}${path}`)).status).toBe(404);
    expect((await fetch(`${base}/console`, { method: "POST" })).status).toBe(405);
  });
});
