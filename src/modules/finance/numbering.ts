import { sql } from "drizzle-orm";
import type { Tx } from "../../db/database.ts";
import { invoiceNumber } from "./invoice.ts";
import { financeInvoiceCounter } from "./table.ts";

/** The next invoice number, taken inside the issuing transaction: its rollback gives the number back. */
export async function nextInvoiceNumber(tx: Tx): Promise<string> {
  const counter = financeInvoiceCounter;
  const [row] = await tx
    .insert(counter)
    .values({ id: 1, last: 1 })
    .onConflictDoUpdate({ target: counter.id, set: { last: sql`${counter.last} + 1` } })
    .returning({ last: counter.last });
  return invoiceNumber(row!.last);
}
