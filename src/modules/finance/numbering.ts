import { type SQL, sql } from "drizzle-orm";
import { financeInvoiceCounter } from "./table.ts";

/**
 * The next `count` invoice numbers, taken at once inside the issuing
 * transaction (one bump of the counter, in the invoices' insert): its
 * rollback gives them all back, and the same statement writes each of them
 * in an invoice, so none is skipped.
 */
export function takeInvoiceNumbers(count: number): { numbers: SQL; nth(i: number): SQL } {
  const c = financeInvoiceCounter;
  return {
    numbers: sql`insert into ${c} (id, last) values (1, ${count})
      on conflict (id) do update set last = ${c.last} + excluded.last returning last`,
    nth: (i) => invoiceNumberOf(sql`((select last from numbers) - ${count - 1 - i})`),
  };
}

/**
 * The invoice number customers and accountants read on the PDF, for a number
 * computed in the statement: INV-000042, past six digits INV-1234567.
 */
export function invoiceNumberOf(n: SQL): SQL {
  return sql`'INV-' || lpad(${n}::text, greatest(6, length(${n}::text)), '0')`;
}
