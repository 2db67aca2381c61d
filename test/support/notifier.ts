import { and, eq, or, sql } from "drizzle-orm";
import { invoiceIssued } from "../../src/modules/notifier/listener.ts";
import { orderEvents } from "../../src/relay/tables.ts";
import { orderStateChanged } from "../../src/statemachine/transition.ts";

/**
 * The outbox rows the notifier records in its inbox: InvoiceIssued and the
 * changes to CONFIRMED, COMPLETED and CANCELLED. PENDING and FULFILLING are
 * announced by no email, and it skips them without an inbox row.
 */
export const notifierRecords = or(
  eq(orderEvents.type, invoiceIssued),
  and(
    eq(orderEvents.type, orderStateChanged),
    sql`${orderEvents.payload}->>'to' in ('confirmed', 'completed', 'cancelled')`,
  ),
);
