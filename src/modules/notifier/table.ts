import { sql } from "drizzle-orm";
import {
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import type { IssuedInvoice } from "../../statemachine/events.ts";

export const notificationKinds = ["confirmed", "completed"] as const;
export type NotificationKind = (typeof notificationKinds)[number];

/**
 * waiting: not every fact it needs has been heard yet; pending: ready, not
 * sent yet; sent: handed to the mail server, for good; cancelled: the order
 * was cancelled before it was sent, so it never will be.
 */
export const notificationStatuses = ["waiting", "pending", "sent", "cancelled"] as const;
export type NotificationStatus = (typeof notificationStatuses)[number];

/**
 * The notifier's outbox of emails: one row per order and kind, so an email is
 * sent at most once whatever is redelivered. The listener writes the row (in
 * the inbox transaction); the sender claims it, sends it, and marks it sent.
 */
export const notifications = pgTable(
  "notifications",
  {
    orderId: uuid("order_id").notNull(),
    kind: text("kind").$type<NotificationKind>().notNull(),
    status: text("status").$type<NotificationStatus>().notNull(),
    /** The facts heard so far (e.g. "order-confirmed", "invoice-issued"); the row is pending once all are in. */
    heard: text("heard").array().notNull(),
    /** `<order-{orderId}.{kind}@{domain of MAIL_FROM}>`: the same on every re-send. */
    messageId: text("message_id").notNull(),
    recipient: text("recipient").notNull(),
    /** The confirmation's invoice, as InvoiceIssued carried it; null until that is heard. */
    invoice: jsonb("invoice").$type<IssuedInvoice>(),
    /** Sends tried (counted when claimed, so a sender that died mid-send counts too). */
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    /**
     * The sender that claimed it last (host:pid:random): while the row is
     * pending, the one sending it, if that sender still holds the row's
     * advisory lock; once sent, the one that sent it. Marking a row sent
     * checks it, so a sender whose claim was taken over marks nothing.
     */
    claimedBy: text("claimed_by"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    sentAt: timestamp("sent_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    primaryKey({ name: "notifications_order_kind", columns: [t.orderId, t.kind] }),
    index("notifications_due").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    check("notifications_kind", sql`${t.kind} in ('confirmed', 'completed')`),
    check("notifications_status", sql`${t.status} in ('waiting', 'pending', 'sent', 'cancelled')`),
  ],
);

export type NotificationRow = typeof notifications.$inferSelect;
