import { sql } from "drizzle-orm";
import { query, type Tx } from "../../db/database.ts";
import { invoiceNumber } from "./invoice.ts";
import { financeInvoiceCounter } from "./table.ts";

/**
 * The next `count` invoice numbers, in order, taken at once inside the
 * issuing transaction (one bump of the counter): its rollback gives them all
 * back, and its caller writes each of them in an invoice of the same
 * transaction, so none is skipped.
 */
export async function takeInvoiceNumbers(tx: Tx, count: number): Promise<string[]> {
  const c = financeInvoiceCounter;
  const [row] = await query<{ last: number }>(
    tx,
    sql`insert into ${c} (id, last) values (1, ${count})
      on conflict (id) do update set last = ${c.last} + excluded.last returning last`,
  );
  const first = row!.last - count + 1;
  return Array.from({ length: count }, (_, i) => invoiceNumber(first + i));
}
