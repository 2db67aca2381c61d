import { sql } from "drizzle-orm";
import type { Tx } from "../../db/database.ts";
import { enqueue } from "../../relay/outbox.ts";
import { defineModule, type ModuleContext, type ModuleHandler } from "../../statemachine/module.ts";
import { createModuleRow, hasNote, moduleEventType, moveModuleRow } from "../../statemachine/module-rows.ts";
import { type CapturedPayment, capturedPayment, invoiceNumber } from "./invoice.ts";
import { financeInvoiceCounter, financeInvoices, type InvoiceState, invoiceStates } from "./table.ts";

/** The next invoice number, taken inside the issuing transaction: its rollback gives the number back. */
async function nextInvoiceNumber(tx: Tx): Promise<string> {
  const counter = financeInvoiceCounter;
  const [row] = await tx
    .insert(counter)
    .values({ id: 1, last: 1 })
    .onConflictDoUpdate({ target: counter.id, set: { last: sql`${counter.last} + 1` } })
    .returning({ last: counter.last });
  return invoiceNumber(row!.last);
}

const issueInvoice: ModuleHandler<InvoiceState> = async (ctx) => {
  const payment = capturedPayment(ctx.event.payload);
  if (await hasNote(ctx.tx, finance.name, ctx.event.orderId, "cancelled")) {
    await refundWithoutInvoice(ctx, payment);
    return;
  }
  await createModuleRow(ctx, { ...payment, invoiceNumber: await nextInvoiceNumber(ctx.tx) });
};

/**
 * An order Finance knows is cancelled before it invoiced it gets no invoice:
 * no number is used, the captured payment is refunded, and no InvoiceIssued
 * goes out (so no confirmation email either).
 */
async function refundWithoutInvoice(ctx: ModuleContext<InvoiceState>, payment: CapturedPayment) {
  const { tx, event } = ctx;
  const inserted = await tx
    .insert(financeInvoices)
    .values({ orderId: event.orderId, state: "refunded", ...payment })
    .onConflictDoNothing()
    .returning({ orderId: financeInvoices.orderId });
  if (inserted.length === 0) return;
  await enqueue(tx, [
    {
      type: moduleEventType(finance, "refunded"),
      orderId: event.orderId,
      payload: { module: finance.name, state: "refunded", from: null, version: 1, cause: event.id },
    },
  ]);
}

/** The payment was captured before the order was confirmed, so an issued invoice is settled at once. */
const settleInvoice: ModuleHandler<InvoiceState> = async (ctx) => {
  await moveModuleRow(ctx, "paid");
};

/** A cancel after the invoice was issued refunds it: the invoice keeps its number, the refund is its credit note. */
const refundInvoice: ModuleHandler<InvoiceState> = async (ctx) => {
  await moveModuleRow(ctx, "refunded");
};

export const finance = defineModule({
  name: "finance",
  entity: "Invoice",
  table: financeInvoices,
  initial: "issued",
  states: invoiceStates,
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
    OrderConfirmed: issueInvoice,
    InvoiceIssued: settleInvoice,
  },
  onCancel: refundInvoice,
});
