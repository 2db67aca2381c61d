import { describe, expect, it } from "vitest";
import { finance } from "../src/modules/finance/index.ts";
import { capturedPayment } from "../src/modules/finance/invoice.ts";
import { modules } from "../src/modules/index.ts";
import { logistics } from "../src/modules/logistics/index.ts";
import { progressTransitions } from "../src/modules/progress.ts";
import { travelium } from "../src/modules/travelium/index.ts";
import { type DomainEvent, isEventType, parseEvent } from "../src/statemachine/events.ts";
import { moduleStatesBefore } from "../src/statemachine/module.ts";
import { decideModule, moduleSkips } from "../src/statemachine/module-decide.ts";
import { invoiceIssued, invoicePaid, orderCancelled, orderConfirmed } from "./support/decider.ts";

describe("Finance's decisions", () => {
  it("issues the invoice for the payment OrderConfirmed carries, and refuses an event without one", () => {
    const confirmed = (payload: Record<string, unknown>) =>
      parseEvent({ id: "e", type: "OrderConfirmed", orderId: "o", occurredAt: "", payload });
    const event = confirmed({
      paymentReference: "p",
      amount: 10,
      currency: "EUR",
      lines: [],
      involvedModules: ["finance"],
    });
    expect(event.type === "OrderConfirmed" && capturedPayment(event.payload)).toEqual({
      paymentReference: "p",
      amount: 10,
      currency: "EUR",
    });
    expect(() => confirmed({ amount: 10 })).toThrow(/OrderConfirmed.paymentReference should be a string/);
  });

  it("settles only an issued invoice and refunds any invoice not yet refunded", () => {
    expect(moduleStatesBefore(finance, "paid")).toEqual(["issued"]);
    expect(moduleStatesBefore(finance, "refunded")).toEqual(["pending", "issued", "paid"]);
    expect(finance.events.issued).toBe("InvoiceIssued");
  });
});

describe("partner progress", () => {
  it("lets a report skip states forward and never go back", () => {
    expect(moduleStatesBefore(logistics, "delivered")).toEqual(["waiting", "picked", "packed", "shipped"]);
    expect(moduleStatesBefore(logistics, "picked")).toEqual(["waiting"]);
    expect(moduleStatesBefore(logistics, "waiting")).toEqual([]);
  });

  it("allows the exit (returned, cancelled) from every state before the last", () => {
    expect(moduleStatesBefore(logistics, "returned")).toEqual(["waiting", "picked", "packed", "shipped"]);
    expect(moduleStatesBefore(travelium, "cancelled")).toEqual(["pending", "reserved", "confirmed"]);
    expect(progressTransitions(["a", "b", "c"], "x")).toEqual({ a: ["b", "c", "x"], b: ["c", "x"] });
  });
});

describe("the module list", () => {
  it("gives each module a unique name, GraphQL type and events, every event in the catalogue", () => {
    expect(new Set(modules.map((m) => m.name)).size).toBe(modules.length);
    expect(new Set(modules.map((m) => m.graphql.typeName)).size).toBe(modules.length);
    const events = modules.flatMap((m) => Object.values<string>(m.events));
    expect(new Set(events).size).toBe(events.length);
    expect(events.filter((type) => !isEventType(type))).toEqual([]);
  });

  it("involves finance in every order and the others by the lines' kinds", () => {
    const order = (kinds: string[]) => ({
      orderId: "o",
      lines: kinds.map((kind) => ({ sku: kind, kind: kind as never, quantity: 1 })),
    });
    const involved = (kinds: string[]) =>
      modules.filter((m) => m.involvedIn(order(kinds))).map((m) => m.name);
    expect(involved(["digital"])).toEqual(["finance"]);
    expect(involved(["physical", "travel"])).toEqual(["finance", "logistics", "travelium"]);
    expect(involved(["subscription"])).toEqual(["finance", "subscription"]);
  });

  it("has a module the order does not involve skip its confirmation, and decide nothing on it", () => {
    const digital = orderConfirmed("digital");
    const skipping = modules.filter((m) => moduleSkips(m, digital)).map((m) => m.name);
    expect(skipping).toEqual(["logistics", "travelium", "subscription"]);
    for (const module of modules) {
      // Even with a note that would otherwise have it act at once.
      const state = { row: undefined, notes: new Set(["cancelled", "invoice-paid"]) };
      if (skipping.includes(module.name)) expect(decideModule(module, digital, state)).toEqual([]);
    }
    const mixed = orderConfirmed("physical", "travel", "subscription");
    expect(modules.filter((m) => moduleSkips(m, mixed))).toEqual([]);
    expect(modules.some((m) => moduleSkips(m, orderCancelled()))).toBe(false);
  });

  it("has a module skip the row events of an order that does not involve it, and its own row's passing states", () => {
    const skipping = (event: DomainEvent) => modules.filter((m) => moduleSkips(m, event)).map((m) => m.name);
    const paid = invoicePaid();
    expect(skipping(paid)).toEqual([]);
    expect(skipping({ ...paid, payload: { ...paid.payload, involvedModules: ["finance"] } })).toEqual([
      "logistics",
      "travelium",
      "subscription",
    ]);
    expect(
      skipping({ ...paid, payload: { ...paid.payload, involvedModules: ["finance", "subscription"] } }),
    ).toEqual(["logistics", "travelium"]);
    const issued = invoiceIssued();
    expect(skipping(issued)).toEqual([]);
    expect(skipping({ ...issued, payload: { ...issued.payload, passing: true } })).toEqual(["finance"]);
  });
});
