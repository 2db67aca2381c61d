import { integer, pgSequence, text } from "drizzle-orm/pg-core";
import { moduleStateTable } from "../../statemachine/module-table.ts";

export const invoiceStates = ["pending", "issued", "paid", "refunded"] as const;
export type InvoiceState = (typeof invoiceStates)[number];

/** Gap-free is not promised (a rolled-back transaction burns a number); unique and increasing is. */
export const invoiceNumbers = pgSequence("finance_invoice_number_seq", { startWith: 1 });

export const financeInvoices = moduleStateTable("finance_invoices", invoiceStates, {
  invoiceNumber: text("invoice_number").unique(),
  amount: integer("amount").notNull(),
  currency: text("currency").notNull(),
  paymentReference: text("payment_reference"),
});
