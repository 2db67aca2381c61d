/**
 * Given / when / then for a module's decisions, after Emmett's decider
 * specifications: given what the module knows of an order (its row's state,
 * its notes), when an event comes, then these actions. No I/O.
 */
import { expect } from "vitest";
import { modules } from "../../src/modules/index.ts";
import type { DomainEvent, EventOf, EventPayloads, EventType } from "../../src/statemachine/events.ts";
import type { ModuleAction, ModuleDefinition } from "../../src/statemachine/module.ts";
import { decideModule } from "../../src/statemachine/module-decide.ts";

export const orderId = "0b7c1a52-9a41-4c1e-8f0e-0f6a8d3e5b11";

export function decider<S extends string>(module: ModuleDefinition<S>) {
  return {
    given(known: { row?: S; notes?: string[] } = {}) {
      const state = {
        row: known.row === undefined ? undefined : { state: known.row },
        notes: new Set(known.notes ?? []),
      };
      return {
        when(event: DomainEvent) {
          const decide = () => decideModule(module, event, state);
          return {
            // biome-ignore lint/suspicious/noThenProperty: Emmett's given/when/then; never awaited.
            then: (actions: ModuleAction<S>[]) => expect(decide()).toEqual(actions),
            thenFails: (error: RegExp) => expect(decide).toThrow(error),
          };
        },
      };
    },
  };
}

function event<T extends EventType>(type: T, payload: EventPayloads[T]): EventOf<T> {
  return { id: `${type}-1`, type, orderId, occurredAt: "2026-01-01T00:00:00.000Z", payload } as EventOf<T>;
}

export function orderConfirmed(...kinds: ("physical" | "travel" | "digital" | "subscription")[]) {
  const lines = kinds.map((kind, i) => ({ sku: `${kind.toUpperCase()}-${i}`, kind, quantity: 1 }));
  return event("OrderConfirmed", {
    paymentReference: "psp-1",
    amount: 1299,
    currency: "EUR",
    lines,
    // As placement decides it, from the same lines.
    involvedModules: modules.filter((m) => m.involvedIn({ orderId, lines })).map((m) => m.name),
  });
}

export const orderCancelled = () => event("OrderCancelled", { reason: "changed my mind", from: "confirmed" });

const report = { idempotencyKey: "k-1", reportedBy: "partner" };
export const shipmentReported = (state: string) => event("ShipmentReported", { state, ...report });
export const bookingReported = (state: string) => event("BookingReported", { state, ...report });

const row = { from: null, version: 1, cause: "OrderConfirmed-1" };
export const invoiceIssued = () =>
  event("InvoiceIssued", {
    module: "finance",
    state: "issued",
    ...row,
    invoice: {
      number: "INV-000001",
      amount: 1299,
      currency: "EUR",
      paymentReference: "psp-1",
      issuedAt: "2026-01-01T00:00:00.000Z",
    },
  });
export const invoicePaid = () =>
  event("InvoicePaid", {
    module: "finance",
    state: "paid",
    from: "issued",
    version: 2,
    cause: "InvoiceIssued-1",
  });
