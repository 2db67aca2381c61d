import type { EventType } from "../../statemachine/events.ts";
import { type CancelDecider, type DecideOn, defineModule } from "../../statemachine/module.ts";
import { cancelledNote } from "../../statemachine/module-decide.ts";
import { capturedPayment, issuedInvoice } from "./invoice.ts";
import { takeInvoiceNumbers } from "./numbering.ts";
import { financeInvoices, type InvoiceState, invoiceStates } from "./table.ts";

type Decide<E extends EventType> = DecideOn<E, InvoiceState, typeof financeInvoices>;

/**
 * The invoice is issued for the payment the confirmation carries, with the
 * next gap-free number, and settled from that payment in the same
 * transaction: the payment was captured before the order was confirmed, so
 * there is nothing to wait for, and InvoiceIssued then InvoicePaid leave
 * together (one hop on the order's critical path instead of two). An order
 * Finance knows is cancelled gets no invoice: no number is used, the captured
 * payment is refunded, and no InvoiceIssued goes out (so no confirmation
 * email either).
 */
const issueAndSettleInvoice: Decide<"OrderConfirmed"> = (confirmed, { notes }) => {
  const payment = capturedPayment(confirmed.payload);
  if (notes.has(cancelledNote)) return [{ kind: "create", state: "refunded", columns: payment }];
  return [
    { kind: "create", state: "issued", columns: payment, numbered: true },
    { kind: "move", to: "paid" },
  ];
};

/**
 * An invoice still issued when its InvoiceIssued comes back was issued by a
 * Finance that settled in a second step (an event published before the
 * upgrade): settle it now. Any other invoice has moved on, and this changes nothing.
 */
const settleInvoice: Decide<"InvoiceIssued"> = () => [{ kind: "move", to: "paid" }];

/** A cancel after the invoice was issued refunds it: the invoice keeps its number, the refund is its credit note. */
const refundInvoice: CancelDecider<InvoiceState> = () => [{ kind: "move", to: "refunded" }];

export const finance = defineModule({
  name: "finance",
  table: financeInvoices,
  initial: "issued",
  states: invoiceStates,
  events: {
    pending: "InvoicePending",
    issued: "InvoiceIssued",
    paid: "InvoicePaid",
    refunded: "InvoiceRefunded",
  },
  transitions: {
    pending: ["issued", "refunded"],
    issued: ["paid", "refunded"],
    paid: ["refunded"],
  },
  terminalHappy: "paid",
  involvedIn: () => true,
  startsFulfilment: ["issued", "paid"],
  graphql: {
    typeName: "FinanceState",
    stateEnum: "InvoiceState",
    stateField: "invoiceState",
    strings: { invoiceNumber: "invoiceNumber" },
  },
  on: {
    OrderConfirmed: issueAndSettleInvoice,
    InvoiceIssued: settleInvoice,
  },
  onCancel: refundInvoice,
  numbering: { column: "invoiceNumber", take: takeInvoiceNumbers },
  announce: { issued: (row) => ({ invoice: issuedInvoice(row) }) },
});
