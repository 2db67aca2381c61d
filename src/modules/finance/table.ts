import { sql } from "drizzle-orm";
import { check, integer, pgTable, text } from "drizzle-orm/pg-core";
import { moduleStateTable } from "../../statemachine/module-table.ts";

export const invoiceStates = ["pending", "issued", "paid", "refunded"] as const;
export type InvoiceState = (typeof invoiceStates)[number];

/**
 * The last invoice number issued: one row, bumped inside the issuing
 * transaction. Invoice numbers must run without gaps (Hungary, Germany,
 * France...): a transaction that rolls back returns its number with it, and
 * the issuing transactions of different orders queue on this row until each
 * commits.
 */
export const financeInvoiceCounter = pgTable(
  "finance_invoice_counter",
  {
    id: integer("id").primaryKey(),
    last: integer("last").notNull(),
  },
  (t) => [check("finance_invoice_counter_one_row", sql`${t.id} = 1`)],
);

export const financeInvoices = moduleStateTable("finance_invoices", invoiceStates, {
  /** Null on an order cancelled before it was invoiced: refunded without an invoice. */
  invoiceNumber: text("invoice_number").unique(),
  amount: integer("amount").notNull(),
  currency: text("currency").notNull(),
  paymentReference: text("payment_reference"),
});
