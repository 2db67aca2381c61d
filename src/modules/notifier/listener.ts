import { and, eq, inArray, sql } from "drizzle-orm";
import { query, type Tx } from "../../db/database.ts";
import type { BusEvent } from "../../relay/bus.ts";
import type { Listener } from "../../relay/listener.ts";
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
export function notifierListener(options: { mailFrom: string; name?: string }): Listener {
  return {
    name: options.name ?? "notifier",
    types: [orderStateChanged, invoiceIssued],
    // PENDING and FULFILLING are announced by no email.
    skips: (delivery) => {
      try {
        const event = parseEvent(delivery);
        return !heardFact(event) && !(event.type === "OrderStateChanged" && event.payload.to === "cancelled");
      } catch {
        return false;
      }
    },
    async handle(tx, delivery) {
      const event = parseEvent(await withInvoice(tx, delivery));
      if (event.type === "OrderStateChanged" && event.payload.to === "cancelled") {
        await tx
          .update(notifications)
          .set({ status: "cancelled" })
          .where(and(eq(notifications.orderId, event.orderId), inArray(notifications.status, notSentYet)));
        return;
      }
      const heard = heardFact(event);
      if (!heard) return;
      const needed = factsNeeded[heard.kind];
      // What the email shows of the invoice comes with the event, so the sender never reads Finance's table.
      const invoice = event.type === "InvoiceIssued" ? event.payload.invoice : null;
      const n = notifications;
      const o = salesOrders;
      const neededArray = sql.raw(`array[${needed.map((f) => `'${f}'`).join(", ")}]::text[]`);
      const complete = needed.every((f) => f === heard.fact);
      // One statement, the order's address and state read in it, so two events of one order handled at once
      // (two processes, or two deliveries side by side) meet on the row's lock: the second sees the first's
      // fact. A row that turns pending wakes the senders (the table's trigger NOTIFYs them at commit).
      const [row] = await query<{ status: NotificationStatus }>(
        tx,
        sql`insert into ${n} (order_id, kind, status, heard, message_id, recipient, invoice)
          select ${event.orderId}::uuid, ${heard.kind}::text,
            case when ${o.status} = 'cancelled' then 'cancelled' when ${complete} then 'pending' else 'waiting' end,
            array[${heard.fact}::text], ${notificationMessageId(event.orderId, heard.kind, options.mailFrom)}::text,
            ${o.contactEmail}, ${invoice === null ? null : JSON.stringify(invoice)}::jsonb
          from ${o} where ${o.id} = ${event.orderId}
          on conflict (order_id, kind) do update set
            invoice = coalesce(excluded.invoice, ${n}.invoice),
            heard = (select array_agg(distinct f order by f) from unnest(${n}.heard || excluded.heard) as f),
            status = case
              when ${n}.status in ('waiting', 'pending') and excluded.status = 'cancelled' then 'cancelled'
              when ${n}.status = 'waiting' and ${neededArray} <@ (${n}.heard || excluded.heard) then 'pending'
              else ${n}.status end
          returning ${n}.status`,
      );
      if (!row) throw new Error(`order ${event.orderId} not found`);
    },
  };
}

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
