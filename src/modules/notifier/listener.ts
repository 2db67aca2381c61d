import { and, eq, inArray, sql } from "drizzle-orm";
import { query, type Tx } from "../../db/database.ts";
import type { BusEvent } from "../../relay/bus.ts";
import type { BatchListener } from "../../relay/listener.ts";
import { orderEvents } from "../../relay/tables.ts";
import { type DomainEvent, parseEvent } from "../../statemachine/events.ts";
import { salesOrders } from "../../statemachine/tables.ts";
import { orderStateChanged } from "../../statemachine/transition.ts";
import { notificationMessageId } from "./mailer.ts";
import { type NotificationKind, type NotificationStatus, notifications } from "./table.ts";

/** The sender LISTENs here; a transaction that made a row pending NOTIFYs it at commit (the table's trigger). */
export const notifierChannel = "notifications";

/** Finance's event with the issued invoice: the confirmation email carries it. */
export const invoiceIssued = "InvoiceIssued";

/**
 * What each email waits for. The confirmation carries the invoice, which
 * Finance issues in reaction to the confirmation: both must have been heard,
 * in whichever order they arrive.
 */
export const factsNeeded: Record<NotificationKind, readonly string[]> = {
  confirmed: ["order-confirmed", "invoice-issued"],
  completed: ["order-completed"],
};

/** The shared-state changes and the one module event the notifier hears; everything else sends nothing. */
export function heardFact(event: DomainEvent): { kind: NotificationKind; fact: string } | undefined {
  if (event.type === "InvoiceIssued") return { kind: "confirmed", fact: "invoice-issued" };
  if (event.type !== "OrderStateChanged") return undefined;
  if (event.payload.to === "confirmed") return { kind: "confirmed", fact: "order-confirmed" };
  if (event.payload.to === "completed") return { kind: "completed", fact: "order-completed" };
  return undefined;
}

/**
 * The notifier's listener. In the inbox transaction it only records what it
 * heard in the order's notifications row (never sends: no SMTP inside a
 * database transaction); once a row has every fact it needs it turns
 * `pending`, and the sender takes it from there. Recording is idempotent on
 * its own (a set of facts; a `sent` row stays sent), so a replayed event,
 * even one the inbox does not know, sends nothing twice.
 *
 * Once an order is cancelled no email announces it: the cancel turns its
 * rows not yet sent `cancelled`, and a fact heard after the cancel committed
 * makes none pending. (The sender checks the order again before each send,
 * for a cancel that lands between the two.)
 */
export function notifierListener(options: {
  mailFrom: string;
  name?: string;
  /** See BatchConsumerSpec.gatherMs. Default 100 ms. */
  gatherMs?: number;
}): BatchListener {
  return {
    name: options.name ?? "notifier",
    types: [orderStateChanged, invoiceIssued],
    // Off the orders' critical path: no order waits for its email. An order's confirmation and completion
    // facts, some tens of ms apart, more often turn pending in one commit and go in one claim.
    gatherMs: options.gatherMs ?? 100,
    // PENDING and FULFILLING are announced by no email.
    skips: (delivery) => {
      try {
        const event = parseEvent(delivery);
        return !heardFact(event) && !(event.type === "OrderStateChanged" && event.payload.to === "cancelled");
      } catch {
        return false;
      }
    },
    async handleBatch(tx, deliveries) {
      // The batch's facts in one statement.
      await record(tx, await Promise.all(deliveries.map(async (d) => parseEvent(await withInvoice(tx, d)))));
    },
  };

  /**
   * Records what these events tell, in stream order, as if one at a time: each
   * notification row's facts merged first, then one upsert for all rows, the
   * orders' addresses and states read in it, so two events of one order
   * handled at once (two processes) meet on the row's lock and the second
   * sees the first's fact. A row that turns pending wakes the senders (the
   * table's trigger NOTIFYs them at commit). Then the cancelled orders' rows
   * not sent yet are cancelled: a fact heard after a cancel committed finds
   * the order cancelled and makes no row pending, either way.
   */
  async function record(tx: Tx, events: DomainEvent[]): Promise<void> {
    const rows = new Map<string, FactRow>();
    const cancelled = new Set<string>();
    for (const event of events) {
      if (event.type === "OrderStateChanged" && event.payload.to === "cancelled")
        cancelled.add(event.orderId);
      const heard = heardFact(event);
      if (!heard) continue;
      const key = `${event.orderId}.${heard.kind}`;
      const row = rows.get(key) ?? {
        order_id: event.orderId,
        kind: heard.kind,
        heard: [],
        needed: [...factsNeeded[heard.kind]],
        message_id: notificationMessageId(event.orderId, heard.kind, options.mailFrom),
        invoice: null,
      };
      // Sorted, as the stored row's facts are.
      if (!row.heard.includes(heard.fact)) row.heard = [...row.heard, heard.fact].sort();
      // What the email shows of the invoice comes with the event, so the sender never reads Finance's table.
      if (event.type === "InvoiceIssued") row.invoice = event.payload.invoice;
      rows.set(key, row);
    }
    if (rows.size > 0) {
      const n = notifications;
      const o = salesOrders;
      const stored = await query<{ order_id: string }>(
        tx,
        sql`insert into ${n} (order_id, kind, status, heard, message_id, recipient, invoice)
          select f.order_id, f.kind,
            case when ${o.status} = 'cancelled' then 'cancelled' when f.needed <@ f.heard then 'pending' else 'waiting' end,
            f.heard, f.message_id, ${o.contactEmail}, f.invoice
          from jsonb_to_recordset(${JSON.stringify([...rows.values()])}::jsonb)
            as f(order_id uuid, kind text, heard text[], needed text[], message_id text, invoice jsonb)
          join ${o} on ${o.id} = f.order_id
          on conflict (order_id, kind) do update set
            invoice = coalesce(excluded.invoice, ${n}.invoice),
            heard = (select array_agg(distinct f order by f) from unnest(${n}.heard || excluded.heard) as f),
            status = case
              when ${n}.status in ('waiting', 'pending') and excluded.status = 'cancelled' then 'cancelled'
              when ${n}.status = 'waiting' and ${neededFor} <@ (${n}.heard || excluded.heard) then 'pending'
              else ${n}.status end
          returning ${n}.order_id`,
      );
      if (stored.length < rows.size) {
        const found = new Set(stored.map((r) => r.order_id));
        const missing = [...rows.values()].find((r) => !found.has(r.order_id));
        throw new Error(`order ${missing?.order_id} not found`);
      }
    }
    if (cancelled.size > 0)
      await tx
        .update(notifications)
        .set({ status: "cancelled" })
        .where(
          and(inArray(notifications.orderId, [...cancelled]), inArray(notifications.status, notSentYet)),
        );
  }
}

/** A notification row as one batch's events make it, before it meets the stored one. */
interface FactRow {
  order_id: string;
  kind: NotificationKind;
  heard: string[];
  needed: string[];
  message_id: string;
  invoice: unknown;
}

/** The facts the stored row's kind needs: factsNeeded, in SQL. */
const neededFor = sql.raw(
  `(case notifications.kind ${Object.entries(factsNeeded)
    .map(([kind, facts]) => `when '${kind}' then array[${facts.map((f) => `'${f}'`).join(", ")}]::text[]`)
    .join(" ")} end)`,
);

const notSentYet: NotificationStatus[] = ["waiting", "pending"];

/**
 * An InvoiceIssued published before the event carried its invoice (still on
 * the stream when this version was deployed) is read as the outbox holds it
 * now: the migration that added the invoice to the event wrote it into those
 * outbox rows too.
 */
async function withInvoice(tx: Tx, delivery: BusEvent): Promise<BusEvent> {
  if (delivery.type !== invoiceIssued || delivery.payload.invoice !== undefined) return delivery;
  const [stored] = await tx
    .select({ payload: orderEvents.payload })
    .from(orderEvents)
    .where(eq(orderEvents.id, delivery.id));
  return stored ? { ...delivery, payload: stored.payload } : delivery;
}
