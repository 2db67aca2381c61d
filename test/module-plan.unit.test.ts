import { describe, expect, it } from "vitest";
import { finance } from "../src/modules/finance/index.ts";
import { logistics } from "../src/modules/logistics/index.ts";
import { subscription } from "../src/modules/subscription/index.ts";
import type { DomainEvent } from "../src/statemachine/events.ts";
import type { ModuleDefinition } from "../src/statemachine/module.ts";
import { type KnownOrder, planModuleBatch } from "../src/statemachine/module-plan.ts";
import {
  invoiceIssued,
  invoicePaid,
  orderCancelled,
  orderConfirmed,
  shipmentReported,
} from "./support/decider.ts";

/** The event of another order, with an id of its own. */
const of = <E extends DomainEvent>(event: E, orderId: string, id: string): E => ({ ...event, orderId, id });
const known = <S extends string>(orders: Record<string, { row?: [S, number]; notes?: string[] }>) =>
  new Map<string, KnownOrder<S>>(
    Object.entries(orders).map(([id, { row, notes }]) => [
      id,
      { row: row && { state: row[0], version: row[1] }, notes: new Set(notes) },
    ]),
  );
const plan = <S extends string>(
  module: ModuleDefinition<S>,
  events: DomainEvent[],
  before: Map<string, KnownOrder<S>> = new Map(),
) => planModuleBatch(module, events, before);
/** The events as the outbox will have them, minus the facts the executor reads from the rows. */
const told = (events: { type: string; orderId: string; payload: Record<string, unknown> }[]) =>
  events.map(({ type, orderId, payload }): Record<string, unknown> => ({ type, orderId, ...payload }));

const payment = { paymentReference: "psp-1", amount: 1299, currency: "EUR" };

describe("a module's batch, planned", () => {
  it("gathers the writes of several orders: one create each, one move each, in stream order", () => {
    const confirmed = orderConfirmed("digital");
    const batch = [
      of(confirmed, "a", "e1"),
      of(orderCancelled(), "b", "e2"),
      of(confirmed, "c", "e3"),
      of(invoiceIssued(), "d", "e4"),
    ];
    const planned = plan(finance, batch, known({ b: { row: ["paid", 2] }, d: { row: ["issued", 1] } }));

    expect(planned.creates).toEqual([
      { orderId: "a", row: { state: "paid", version: 2 }, columns: payment, numbered: true },
      { orderId: "c", row: { state: "paid", version: 2 }, columns: payment, numbered: true },
    ]);
    expect(planned.moves).toEqual([
      { orderId: "b", from: { state: "paid", version: 2 }, to: { state: "refunded", version: 3 } },
      { orderId: "d", from: { state: "issued", version: 1 }, to: { state: "paid", version: 2 } },
    ]);
    expect(planned.notes).toEqual([]);
    const involvedModules = ["finance"];
    expect(told(planned.events)).toEqual([
      {
        type: "InvoiceIssued",
        orderId: "a",
        module: "finance",
        state: "issued",
        from: null,
        version: 1,
        cause: "e1",
        involvedModules,
        passing: true,
      },
      {
        type: "InvoicePaid",
        orderId: "a",
        module: "finance",
        state: "paid",
        from: "issued",
        version: 2,
        cause: "e1",
        involvedModules,
      },
      {
        type: "InvoiceRefunded",
        orderId: "b",
        module: "finance",
        state: "refunded",
        from: "paid",
        version: 3,
        cause: "e2",
      },
      {
        type: "InvoiceIssued",
        orderId: "c",
        module: "finance",
        state: "issued",
        from: null,
        version: 1,
        cause: "e3",
        involvedModules,
        passing: true,
      },
      {
        type: "InvoicePaid",
        orderId: "c",
        module: "finance",
        state: "paid",
        from: "issued",
        version: 2,
        cause: "e3",
        involvedModules,
      },
      {
        type: "InvoicePaid",
        orderId: "d",
        module: "finance",
        state: "paid",
        from: "issued",
        version: 2,
        cause: "e4",
      },
    ]);
    // The invoice's facts, read from the row as the confirmation wrote it.
    expect(planned.events.map((e) => e.announce)).toEqual([
      { state: "issued", row: { state: "paid", version: 2 } },
      undefined,
      undefined,
      { state: "issued", row: { state: "paid", version: 2 } },
      undefined,
      undefined,
    ]);
  });

  it("writes an order's row once, in its last state, when the batch creates it and moves it on", () => {
    const batch = [
      of(orderConfirmed("digital"), "a", "e1"),
      of(orderCancelled(), "a", "e2"),
      of(orderConfirmed("digital"), "a", "e3"),
      of(orderCancelled(), "a", "e4"),
    ];
    const planned = plan(finance, batch);
    expect(planned.creates).toEqual([
      { orderId: "a", row: { state: "refunded", version: 3 }, columns: payment, numbered: true },
    ]);
    expect(planned.moves).toEqual([]);
    // The repeated confirmation finds the row and does nothing; the second cancel finds it refunded.
    expect(told(planned.events).map((e) => [e.type, e.version, e.cause, e.passing])).toEqual([
      ["InvoiceIssued", 1, "e1", true],
      ["InvoicePaid", 2, "e1", undefined],
      ["InvoiceRefunded", 3, "e2", undefined],
    ]);
    // Announced as the confirmation wrote it: paid, version 2, though the batch leaves it refunded.
    expect(planned.events[0]!.announce).toEqual({ state: "issued", row: { state: "paid", version: 2 } });
  });

  it("notes a cancel that comes before the row, and creates the row rolled back when the confirmation follows", () => {
    const batch = [of(orderCancelled(), "a", "e1"), of(orderConfirmed("digital"), "a", "e2")];
    const planned = plan(finance, batch);
    expect(planned.notes).toEqual([{ orderId: "a", note: "cancelled" }]);
    expect(planned.creates).toEqual([
      { orderId: "a", row: { state: "refunded", version: 1 }, columns: payment, numbered: false },
    ]);
    expect(told(planned.events).map((e) => [e.type, e.from, e.version, e.cause])).toEqual([
      ["InvoiceRefunded", null, 1, "e2"],
    ]);

    // Subscription creates then terminates at once: one path, its first step passing.
    const subscribed = plan(subscription, [
      of(orderCancelled(), "s", "e1"),
      of(orderConfirmed("subscription"), "s", "e2"),
    ]);
    expect(subscribed.creates.map((c) => [c.orderId, c.row])).toEqual([
      ["s", { state: "terminated", version: 2 }],
    ]);
    expect(told(subscribed.events).map((e) => [e.type, e.from, e.version, e.passing])).toEqual([
      ["SubscriptionPending", null, 1, true],
      ["SubscriptionTerminated", "pending", 2, undefined],
    ]);
  });

  it("writes a note once, and none the module knew already", () => {
    const batch = [
      of(invoicePaid(), "a", "e1"),
      of(invoicePaid(), "a", "e2"),
      of(invoicePaid(), "b", "e3"),
      of(orderConfirmed("subscription"), "a", "e4"),
    ];
    const planned = plan(subscription, batch, known({ b: { notes: ["invoice-paid"] } }));
    expect(planned.notes).toEqual([{ orderId: "a", note: "invoice-paid" }]);
    // The confirmation sees the note the batch took: the subscription opens active.
    expect(planned.creates.map((c) => [c.orderId, c.row])).toEqual([["a", { state: "active", version: 2 }]]);
  });

  it("moves a row the module had once, to its last state, from the state and version it was read in", () => {
    const batch = [
      of(shipmentReported("picked"), "a", "e1"),
      of(shipmentReported("waiting"), "a", "e2"),
      of(shipmentReported("shipped"), "a", "e3"),
      of(orderCancelled(), "a", "e4"),
    ];
    const planned = plan(logistics, batch, known({ a: { row: ["waiting", 4] } }));
    expect(planned.moves).toEqual([
      { orderId: "a", from: { state: "waiting", version: 4 }, to: { state: "shipped", version: 6 } },
    ]);
    // A report that goes back changes nothing; a parcel on its way is left to the carrier.
    expect(told(planned.events).map((e) => [e.type, e.from, e.version, e.cause])).toEqual([
      ["ShipmentPicked", "waiting", 5, "e1"],
      ["ShipmentShipped", "picked", 6, "e3"],
    ]);
  });

  it("fails the batch as the event alone would: a report before the row, to be retried", () => {
    const batch = [of(orderConfirmed("physical"), "a", "e1"), of(shipmentReported("picked"), "b", "e2")];
    expect(() => plan(logistics, batch)).toThrow(/no shipment yet/);
    // Once the batch created the row, a report on it moves it.
    const planned = plan(logistics, [
      of(orderConfirmed("physical"), "a", "e1"),
      of(shipmentReported("picked"), "a", "e2"),
    ]);
    expect(planned.creates.map((c) => [c.orderId, c.row])).toEqual([["a", { state: "picked", version: 2 }]]);
    expect(planned.moves).toEqual([]);
  });

  it("plans nothing for events the module skips or does not act on", () => {
    const issued = invoiceIssued();
    const planned = plan(finance, [
      of({ ...issued, payload: { ...issued.payload, passing: true } }, "a", "e1"),
    ]);
    expect(planned).toEqual({ creates: [], moves: [], notes: [], events: [] });
  });
});
