import type pg from "pg";
import { modules } from "../../src/modules/index.ts";
import { notifierListener } from "../../src/modules/notifier/listener.ts";
import { moduleListener } from "../../src/statemachine/module-listener.ts";
import { ordersListener } from "../../src/statemachine/orders-listener.ts";
import type { DrivenOrder, Subscriber } from "./load.ts";
import type { ReceivedMail } from "./smtp.ts";

/**
 * The one checker of the fault suite (and the shutdown test): after a fault,
 * waits until the system has settled, then holds it to its promises: every
 * order in the state it should be in; every event in the stream and in the
 * inbox of each consumer that hears it (or in dead_letters), no effect twice;
 * exactly the emails CONTRACT.md promises; each subscriber, on any gateway,
 * handed each change of the orders it may see once and in order.
 */

/** The final shared state of an order; "confirmed" for one held back on purpose (the poison). */
export type Outcome = "completed" | "cancelled" | "confirmed";

export interface CheckedOrder extends DrivenOrder {
  expect?: Outcome;
}

export const expectedOutcome = (o: CheckedOrder): Outcome =>
  o.expect ?? (o.cancel ? "cancelled" : "completed");

/** The consumers and the types each hears, as the processes run them. */
const consumers = [
  ordersListener(modules),
  ...modules.map(moduleListener),
  notifierListener({ mailFrom: "x" }),
].map((l) => ({ name: l.name, types: new Set(l.types), skips: l.skips }));

function skipped(consumer: (typeof consumers)[number], e: EventRow): boolean {
  const event = { id: e.id, type: e.type, orderId: e.order_id, occurredAt: "", payload: e.payload };
  return consumer.skips?.(event) ?? false;
}

/** Events an order has at most once; a second is an effect applied twice. */
const once = new Set([
  "OrderPlaced",
  "OrderConfirmed",
  "OrderCancelled",
  "InvoiceIssued",
  "InvoicePaid",
  "InvoiceRefunded",
]);

export interface Findings {
  orders: number;
  /** Orders not in the state they should be in. */
  wrongState: string[];
  /**
   * Events not in the stream, or not in the inbox of a consumer that hears
   * them: dead-lettered counts as lost, but for an order held back on purpose.
   */
  eventsLost: string[];
  /** Effects applied twice: an event an order has once, twice; an invoice number twice; an email twice. */
  effectsDoubled: string[];
  mailsMissing: string[];
  mailsUnexpected: string[];
  subscriberDuplicates: string[];
  subscriberMissing: string[];
  subscriberOutOfOrder: string[];
  /** Changes handed to a subscriber who may not see the order. */
  subscriberLeaks: string[];
}

export const problemsOf = (f: Findings): string[] =>
  Object.entries(f).flatMap(([k, v]) =>
    Array.isArray(v) && v.length > 0 ? [`${k}: ${v.slice(0, 10).join("; ")}`] : [],
  );

interface EventRow {
  id: string;
  order_id: string;
  type: string;
  payload: Record<string, unknown>;
  published: boolean;
  parked: boolean;
}

export interface SubscriberView {
  subscriber: Subscriber;
  /** The customer whose orders it sees; undefined: an admin, who sees every order. */
  customer?: string;
}

export class FaultChecker {
  constructor(
    private readonly sql: pg.Pool,
    private readonly mails: ReceivedMail[],
  ) {}

  /** Orders placed since `since` and not yet done: not completed or cancelled, or an email not sent yet. */
  async inFlight(since: Date): Promise<number> {
    const { rows } = await this.sql.query<{ n: number }>(
      `select count(*)::int as n from sales_orders o where o.created_at >= $1
          and (o.status not in ('completed', 'cancelled')
               or exists (select 1 from notifications n where n.order_id = o.id and n.status in ('waiting', 'pending')))`,
      [since],
    );
    return rows[0]!.n;
  }

  /**
   * Waits until every order is where it should end and everything owed about
   * it has been done (published, handled, mailed, handed to subscribers);
   * answers when, or throws the findings that were still open at the timeout.
   */
  async settled(orders: CheckedOrder[], views: SubscriberView[], timeoutMs = 180_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last: Findings | undefined;
    for (;;) {
      last = await this.findings(orders, views);
      const open = [last.wrongState, last.eventsLost, last.mailsMissing, last.subscriberMissing].some(
        (l) => l.length > 0,
      );
      if (!open) return Date.now();
      if (Date.now() > deadline)
        throw new Error(`not settled within ${timeoutMs} ms:\n${problemsOf(last).join("\n")}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  async findings(orders: CheckedOrder[], views: SubscriberView[]): Promise<Findings> {
    const f: Findings = {
      orders: orders.length,
      wrongState: [],
      eventsLost: [],
      effectsDoubled: [],
      mailsMissing: [],
      mailsUnexpected: [],
      subscriberDuplicates: [],
      subscriberMissing: [],
      subscriberOutOfOrder: [],
      subscriberLeaks: [],
    };
    const ids = orders.map((o) => o.id);
    const byId = new Map(orders.map((o) => [o.id, o]));

    const statuses = await this.sql.query<{ id: string; status: string }>(
      `select id, status from sales_orders where id = any($1::uuid[])`,
      [ids],
    );
    const status = new Map(statuses.rows.map((r) => [r.id, r.status]));
    for (const o of orders)
      if (status.get(o.id) !== expectedOutcome(o))
        f.wrongState.push(`${o.key} ${o.id}: ${status.get(o.id)} (want ${expectedOutcome(o)})`);

    const events = (
      await this.sql.query<EventRow>(
        `select id, order_id, type, payload, published_at is not null as published, parked_at is not null as parked
           from order_events where order_id = any($1::uuid[]) order by seq`,
        [ids],
      )
    ).rows;
    const handled = new Set(
      (
        await this.sql.query<{ key: string }>(
          `select p.consumer || ' ' || p.event_id as key from processed_events p
             join order_events e on e.id = p.event_id where e.order_id = any($1::uuid[])
           union all
           select consumer || ' ' || event_id from dead_letters where order_id = any($2::uuid[])`,
          [ids, orders.filter((o) => o.expect !== undefined).map((o) => o.id)],
        )
      ).rows.map((r) => r.key),
    );
    const perOrder = new Map<string, EventRow[]>();
    for (const e of events) {
      if (!e.published)
        f.eventsLost.push(`${e.type} ${e.id} of ${e.order_id} not published${e.parked ? " (parked)" : ""}`);
      // A listener that skips the event (nothing for it, told by the event alone) keeps no inbox row of it.
      else
        for (const c of consumers)
          if (c.types.has(e.type) && !skipped(c, e) && !handled.has(`${c.name} ${e.id}`))
            f.eventsLost.push(`${c.name} has not handled ${e.type} ${e.id} of ${e.order_id}`);
      const list = perOrder.get(e.order_id) ?? [];
      list.push(e);
      perOrder.set(e.order_id, list);
    }
    for (const [orderId, list] of perOrder) {
      const seen = new Map<string, number>();
      for (const e of list) {
        const key = e.type === "OrderStateChanged" ? `OrderStateChanged to ${String(e.payload.to)}` : e.type;
        if (once.has(e.type) || e.type === "OrderStateChanged") seen.set(key, (seen.get(key) ?? 0) + 1);
      }
      for (const [key, n] of seen) if (n > 1) f.effectsDoubled.push(`${orderId}: ${key} ×${n}`);
    }
    const invoices = await this.sql.query<{ invoice_number: string; n: number }>(
      `select invoice_number, count(*)::int as n from finance_invoices
        where invoice_number is not null group by invoice_number having count(*) > 1`,
    );
    for (const r of invoices.rows) f.effectsDoubled.push(`invoice ${r.invoice_number} ×${r.n}`);

    // Mails: the confirmation once for each confirmed order not cancelled, the completion once for each completed one.
    const mailsOf = new Map<string, ReceivedMail[]>();
    for (const m of this.mails) {
      if (!byId.has(m.orderId)) continue;
      const list = mailsOf.get(m.orderId) ?? [];
      list.push(m);
      mailsOf.set(m.orderId, list);
    }
    for (const o of orders) {
      const got = mailsOf.get(o.id) ?? [];
      const count = (kind: string) => got.filter((m) => m.kind === kind).length;
      for (const kind of ["confirmed", "completed"])
        if (count(kind) > 1) f.effectsDoubled.push(`${o.id}: ${kind} mail ×${count(kind)}`);
      const outcome = expectedOutcome(o);
      if (outcome === "completed") {
        for (const kind of ["confirmed", "completed"])
          if (count(kind) === 0) f.mailsMissing.push(`${o.key} ${o.id}: ${kind}`);
      } else if (outcome === "cancelled") {
        // A confirmation handed to the mail server before the cancel stays sent; nothing else.
        if (count("completed") > 0) f.mailsUnexpected.push(`${o.id}: completed mail of a cancelled order`);
      } else if (got.length > 0)
        f.mailsUnexpected.push(`${o.id}: ${got.map((m) => m.kind).join(",")} for an order held back`);
    }

    // Subscribers: each change of each order it may see, once, in the order of the timeline.
    const changes = new Map<string, string[]>();
    for (const [orderId, list] of perOrder)
      changes.set(
        orderId,
        list.filter((e) => e.type === "OrderStateChanged" && e.published).map((e) => e.id),
      );
    for (const { subscriber, customer } of views) {
      const got = new Map<string, string[]>();
      for (const c of subscriber.changes) {
        if (!byId.has(c.orderId)) continue;
        const list = got.get(c.orderId) ?? [];
        list.push(c.eventId);
        got.set(c.orderId, list);
      }
      for (const o of orders) {
        const mine = customer === undefined || o.customer === customer;
        const received = got.get(o.id) ?? [];
        if (!mine) {
          if (received.length > 0) f.subscriberLeaks.push(`${subscriber.name}: ${o.id} of ${o.customer}`);
          continue;
        }
        const want = changes.get(o.id) ?? [];
        const distinct = [...new Set(received)];
        if (distinct.length < received.length)
          f.subscriberDuplicates.push(`${subscriber.name}: ${o.id} ×${received.length - distinct.length}`);
        const missing = want.filter((id) => !distinct.includes(id));
        if (missing.length > 0)
          f.subscriberMissing.push(`${subscriber.name}: ${o.id} misses ${missing.length}`);
        const order = distinct.filter((id) => want.includes(id));
        if (order.some((id, i) => i > 0 && want.indexOf(id) < want.indexOf(order[i - 1]!)))
          f.subscriberOutOfOrder.push(`${subscriber.name}: ${o.id}`);
      }
    }
    return f;
  }
}
