import { describe, expect, it } from "vitest";
import { outboxLagSeconds } from "../src/relay/outbox-backlog.ts";
import { idRange } from "../src/schema/pipeline.ts";
import { whoCaused } from "../src/statemachine/actors.ts";

describe("who caused an event", () => {
  it("is the recorded caller when the gateway recorded one", () => {
    expect(whoCaused({ type: "OrderConfirmed", actor: "partner:psp", payload: null })).toEqual({
      kind: "partner",
      id: "psp",
    });
    expect(whoCaused({ type: "OrderCancelled", actor: "admin:ops:eu", payload: null })).toEqual({
      kind: "admin",
      id: "ops:eu",
    });
    expect(whoCaused({ type: "OrderPlaced", actor: "robot:x", payload: null })).toEqual({
      kind: "unknown",
      id: "robot:x",
    });
  });

  it("is the module a listener's event names, else the completion aggregate", () => {
    const row = (type: string, payload: Record<string, unknown>) => whoCaused({ type, actor: null, payload });
    expect(row("InvoiceIssued", { module: "finance", state: "issued" })).toEqual({
      kind: "module",
      id: "finance",
    });
    expect(row("OrderCancelled", { reason: "no seat", from: "confirmed", veto: "travelium" })).toEqual({
      kind: "module",
      id: "travelium",
    });
    expect(row("OrderStateChanged", { from: "fulfilling", to: "completed", customerId: "c" })).toEqual({
      kind: "module",
      id: "orders",
    });
  });

  it("is read from the payload of rows written before callers were recorded, or unknown", () => {
    const row = (type: string, payload: Record<string, unknown>) => whoCaused({ type, actor: null, payload });
    expect(row("OrderPlaced", { customerId: "c-1" })).toEqual({ kind: "customer", id: "c-1" });
    expect(row("OrderStateChanged", { from: null, to: "pending", customerId: "c-1" })).toEqual({
      kind: "customer",
      id: "c-1",
    });
    expect(row("ShipmentReported", { state: "shipped", reportedBy: "carrier" })).toEqual({
      kind: "partner",
      id: "carrier",
    });
    expect(row("OrderStateChanged", { from: "pending", to: "confirmed", customerId: "c-1" })).toEqual({
      kind: "unknown",
      id: "",
    });
  });
});

describe("the order inspector's id search", () => {
  it("names one order by its UUID and every order an id prefix of 8 to 32 hex digits starts", () => {
    const id = "643DDE9E-6126-4B7B-88DB-1CDFB2DC58B0";
    expect(idRange(id)).toEqual([id.toLowerCase(), id.toLowerCase()]);
    expect(idRange("643dde9e")).toEqual([
      "643dde9e-0000-0000-0000-000000000000",
      "643dde9e-ffff-ffff-ffff-ffffffffffff",
    ]);
    expect(idRange("643dde9e-61")).toEqual([
      "643dde9e-6100-0000-0000-000000000000",
      "643dde9e-61ff-ffff-ffff-ffffffffffff",
    ]);
  });

  it("names no id for fewer than 8 hex digits or anything else", () => {
    expect(idRange("643dde9")).toBeUndefined();
    expect(idRange("ada@example.com")).toBeUndefined();
    expect(idRange("customer-1")).toBeUndefined();
  });
});

describe("the outbox lag", () => {
  it("is the age of the oldest waiting event, 0 when none waits", () => {
    const now = Date.parse("2026-01-01T00:00:10Z");
    expect(outboxLagSeconds({ waiting: 3, oldest: new Date("2026-01-01T00:00:07.500Z") }, now)).toBe(2.5);
    expect(outboxLagSeconds({ waiting: 0, oldest: null }, now)).toBe(0);
  });
});
