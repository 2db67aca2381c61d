import { describe, expect, it } from "vitest";
import { RefusedError } from "../src/errors.ts";
import { modules } from "../src/modules/index.ts";
import {
  type CatalogProduct,
  decideCancel,
  decideConfirmation,
  decideModuleEvents,
  decidePlacement,
  decideProgress,
  explainCompletion,
} from "../src/statemachine/decide.ts";
import {
  canMove,
  nextStatuses,
  type OrderStatus,
  orderStatuses,
  statusesBefore,
  transitions,
} from "../src/statemachine/states.ts";

const catalog = new Map<string, CatalogProduct>(
  [
    { sku: "BOOK", name: "Book", kind: "digital", priceAmount: 1000, currency: "EUR" },
    { sku: "MUG", name: "Mug", kind: "physical", priceAmount: 1500, currency: "EUR" },
    { sku: "TRIP", name: "Trip", kind: "travel", priceAmount: 40000, currency: "EUR" },
    { sku: "BOX", name: "Box", kind: "subscription", priceAmount: 2900, currency: "EUR" },
    { sku: "DOLLAR", name: "Dollar thing", kind: "digital", priceAmount: 100, currency: "USD" },
  ].map((p) => [p.sku, p as CatalogProduct]),
);
const everyModule = ["finance", "logistics", "travelium", "subscription"];

function refusal(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof RefusedError) return error.code;
    throw error;
  }
  return undefined;
}

describe("the transition table", () => {
  it("lets an order move forward one step at a time, and cancel until it completes", () => {
    expect(nextStatuses("pending")).toEqual(["confirmed", "cancelled"]);
    expect(nextStatuses("confirmed")).toEqual(["fulfilling", "cancelled"]);
    expect(nextStatuses("fulfilling")).toEqual(["completed", "cancelled"]);
    expect(nextStatuses("completed")).toEqual([]);
    expect(nextStatuses("cancelled")).toEqual([]);
    expect(canMove("pending", "fulfilling")).toBe(false);
    expect(canMove("completed", "cancelled")).toBe(false);
    expect(statusesBefore("cancelled")).toEqual(["pending", "confirmed", "fulfilling"]);
  });

  it("names only the five shared states", () => {
    for (const t of transitions) {
      expect(orderStatuses).toContain(t.from);
      expect(orderStatuses).toContain(t.to);
    }
  });
});

describe("placing an order", () => {
  const place = (lines: { sku: string; quantity: number }[], required = everyModule) =>
    decidePlacement(
      { lines, contactEmail: "a@example.com", idempotencyKey: "k" },
      catalog,
      modules,
      required,
    );

  it("fixes the involved and required modules from the lines' kinds", () => {
    expect(place([{ sku: "BOOK", quantity: 1 }]).requiredModules).toEqual(["finance"]);
    const mixed = place([
      { sku: "BOOK", quantity: 1 },
      { sku: "MUG", quantity: 2 },
      { sku: "TRIP", quantity: 1 },
      { sku: "BOX", quantity: 1 },
    ]);
    expect(mixed.involvedModules).toEqual(everyModule);
    expect(mixed.totalAmount).toBe(1000 + 3000 + 40000 + 2900);
  });

  it("leaves out of requiredModules what the configuration does not require", () => {
    const order = place([{ sku: "BOX", quantity: 1 }], ["finance", "logistics"]);
    expect(order.involvedModules).toEqual(["finance", "subscription"]);
    expect(order.requiredModules).toEqual(["finance"]);
  });

  it("refuses malformed input with the contract's codes", () => {
    expect(refusal(() => place([]))).toBe("BAD_USER_INPUT");
    expect(refusal(() => place([{ sku: "BOOK", quantity: 0 }]))).toBe("BAD_USER_INPUT");
    expect(refusal(() => place([{ sku: "NOPE", quantity: 1 }]))).toBe("NOT_FOUND");
    expect(
      refusal(() =>
        place([
          { sku: "BOOK", quantity: 1 },
          { sku: "DOLLAR", quantity: 1 },
        ]),
      ),
    ).toBe("BAD_USER_INPUT");
    expect(
      refusal(() =>
        decidePlacement(
          { lines: [{ sku: "BOOK", quantity: 1 }], contactEmail: "nope", idempotencyKey: "k" },
          catalog,
          modules,
          [],
        ),
      ),
    ).toBe("BAD_USER_INPUT");
  });
});

describe("the payment callback", () => {
  const pending = { status: "pending" as const, totalAmount: 2598, currency: "EUR", paymentReference: null };

  it("confirms a pending order paid in full", () => {
    expect(decideConfirmation(pending, { paymentReference: "p1", amount: 2598, currency: "EUR" })).toBe(
      "confirm",
    );
  });

  it("answers a repeated callback as before, whatever the order's state now", () => {
    const completed = { ...pending, status: "completed" as const, paymentReference: "p1" };
    expect(decideConfirmation(completed, { paymentReference: "p1", amount: 2598, currency: "EUR" })).toBe(
      "replay",
    );
  });

  it("refuses another amount or currency, and a second payment", () => {
    expect(
      refusal(() => decideConfirmation(pending, { paymentReference: "p1", amount: 1, currency: "EUR" })),
    ).toBe("BAD_USER_INPUT");
    expect(
      refusal(() => decideConfirmation(pending, { paymentReference: "p1", amount: 2598, currency: "USD" })),
    ).toBe("BAD_USER_INPUT");
    const confirmed = { ...pending, status: "confirmed" as const, paymentReference: "p1" };
    expect(
      refusal(() => decideConfirmation(confirmed, { paymentReference: "p2", amount: 2598, currency: "EUR" })),
    ).toBe("INVALID_TRANSITION");
  });
});

describe("cancel", () => {
  it("cancels until completion; a cancelled order stays as it is", () => {
    expect(decideCancel({ status: "fulfilling" }, "changed my mind")).toBe("cancel");
    expect(decideCancel({ status: "cancelled" }, "again")).toBe("unchanged");
    expect(refusal(() => decideCancel({ status: "completed" }, "too late"))).toBe("INVALID_TRANSITION");
    expect(refusal(() => decideCancel({ status: "pending" }, " "))).toBe("BAD_USER_INPUT");
  });
});

describe("the completion aggregate", () => {
  const rows = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it("moves a confirmed order to fulfilling once the invoice is issued", () => {
    expect(decideProgress("confirmed", ["finance"], rows({}), modules)).toEqual([]);
    expect(decideProgress("confirmed", ["finance"], rows({ finance: "issued" }), modules)).toEqual([
      "fulfilling",
    ]);
  });

  it("completes only when every required module is terminal-happy, whatever else is done", () => {
    const required = ["finance", "logistics", "travelium"];
    expect(
      decideProgress("fulfilling", required, rows({ finance: "paid", logistics: "delivered" }), modules),
    ).toEqual([]);
    expect(
      decideProgress(
        "fulfilling",
        required,
        rows({ finance: "paid", logistics: "shipped", travelium: "travelled" }),
        modules,
      ),
    ).toEqual([]);
    expect(
      decideProgress(
        "fulfilling",
        required,
        rows({ finance: "paid", logistics: "delivered", travelium: "travelled" }),
        modules,
      ),
    ).toEqual(["completed"]);
  });

  it("takes both steps at once when the invoice is already paid", () => {
    expect(decideProgress("confirmed", ["finance"], rows({ finance: "paid" }), modules)).toEqual([
      "fulfilling",
      "completed",
    ]);
  });

  it("never moves a pending, cancelled or completed order", () => {
    for (const status of ["pending", "cancelled", "completed"] as const) {
      expect(decideProgress(status, ["finance"], rows({ finance: "paid" }), modules)).toEqual([]);
    }
  });

  it("does not wait for a module that is involved but not required", () => {
    expect(
      decideProgress("fulfilling", ["finance"], rows({ finance: "paid", subscription: "pending" }), modules),
    ).toEqual(["completed"]);
  });
});

describe("a batch of module row events, decided in stream order", () => {
  const order = (status: OrderStatus, requiredModules: string[]) => ({ status, requiredModules });
  const rows = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it("decides each event on the order as the batch's earlier events left it, a veto in between", () => {
    const orders = new Map([
      ["paid", order("confirmed", ["finance"])],
      ["trip", order("confirmed", ["finance", "travelium"])],
      ["vetoed-first", order("confirmed", ["finance", "travelium"])],
      ["done", order("completed", ["finance"])],
    ]);
    const moduleRows = new Map([
      ["paid", rows({ finance: "paid" })],
      ["trip", rows({ finance: "paid", travelium: "cancelled" })],
      ["vetoed-first", rows({ finance: "paid", travelium: "cancelled" })],
      ["done", rows({ finance: "paid" })],
    ]);
    const moves = decideModuleEvents(
      orders,
      moduleRows,
      [
        { orderId: "trip", module: "finance", state: "paid" },
        { orderId: "paid", module: "finance", state: "paid" },
        { orderId: "trip", module: "travelium", state: "cancelled" },
        { orderId: "vetoed-first", module: "travelium", state: "cancelled" },
        { orderId: "paid", module: "finance", state: "paid" },
        { orderId: "trip", module: "finance", state: "paid" },
        { orderId: "vetoed-first", module: "finance", state: "paid" },
        { orderId: "done", module: "finance", state: "paid" },
        { orderId: "unknown", module: "finance", state: "paid" },
      ],
      modules,
    );
    expect(moves).toEqual([
      // The invoice starts fulfilment; the cancelled booking is not terminal-happy, so no completion.
      { orderId: "trip", from: "confirmed", path: ["fulfilling"] },
      { orderId: "paid", from: "confirmed", path: ["fulfilling", "completed"] },
      // The veto cancels the order from where the first event left it.
      {
        orderId: "trip",
        from: "fulfilling",
        path: ["cancelled"],
        veto: { module: "travelium", reason: "travelium vetoed the order (cancelled)" },
      },
      {
        orderId: "vetoed-first",
        from: "confirmed",
        path: ["cancelled"],
        veto: { module: "travelium", reason: "travelium vetoed the order (cancelled)" },
      },
      // The repeated events find their orders moved already (completed, cancelled): nothing more.
    ]);
  });

  it("moves an order only as its own rows call for, and not on a module that vetoes nothing", () => {
    const orders = new Map([
      ["issued", order("confirmed", ["finance"])],
      ["refunded", order("confirmed", ["finance"])],
      ["no-rows", order("confirmed", ["finance"])],
    ]);
    const moduleRows = new Map([
      ["issued", rows({ finance: "issued" })],
      ["refunded", rows({ finance: "refunded" })],
    ]);
    const events = [...orders.keys()].map((orderId) => ({
      orderId,
      module: "finance",
      state: orderId === "issued" ? "issued" : "refunded",
    }));
    expect(decideModuleEvents(orders, moduleRows, events, modules)).toEqual([
      { orderId: "issued", from: "confirmed", path: ["fulfilling"] },
    ]);
  });
});

describe("the completion, explained", () => {
  it("names each involved module, whether it is required, and what it waits for", () => {
    const order = {
      involvedModules: ["finance", "logistics", "subscription"],
      requiredModules: ["finance", "logistics"],
    };
    const explained = explainCompletion(
      order,
      new Map([
        ["finance", "paid"],
        ["subscription", "pending"],
      ]),
      modules,
    );
    expect(explained).toEqual([
      { module: "finance", required: true, state: "paid", terminalHappy: "paid", done: true },
      { module: "logistics", required: true, state: undefined, terminalHappy: "delivered", done: false },
      { module: "subscription", required: false, state: "pending", terminalHappy: "active", done: false },
    ]);
  });
});
