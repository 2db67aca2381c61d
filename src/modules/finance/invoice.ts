/** Finance's decisions, free of I/O. */
import type { IssuedInvoice, OrderConfirmed } from "../../statemachine/events.ts";
import type { financeInvoices } from "./table.ts";

export interface CapturedPayment {
  paymentReference: string;
  amount: number;
  currency: string;
}

/** OrderConfirmed carries the captured payment; an invoice is issued for exactly that amount. */
export function capturedPayment(confirmed: OrderConfirmed): CapturedPayment {
  const { paymentReference, amount, currency } = confirmed;
  return { paymentReference, amount, currency };
}

/** InvoiceIssued carries the invoice as written, so that nobody has to read Finance's table for it. */
export function issuedInvoice(row: typeof financeInvoices.$inferSelect): IssuedInvoice {
  if (row.invoiceNumber === null) throw new Error(`invoice of order ${row.orderId} has no number`);
  return {
    number: row.invoiceNumber,
    amount: row.amount,
    currency: row.currency,
    paymentReference: row.paymentReference,
    issuedAt: row.createdAt.toISOString(),
  };
}
