import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { orderStatuses } from "./states.ts";

const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(", "));

/** The shared order: Sales' row, owned by the state machine. */
export const salesOrders = pgTable(
  "sales_orders",
  {
    id: uuid("id").primaryKey(),
    status: text("status").$type<(typeof orderStatuses)[number]>().notNull(),
    customerId: text("customer_id").notNull(),
    contactEmail: text("contact_email").notNull(),
    totalAmount: integer("total_amount").notNull(),
    currency: text("currency").notNull(),
    /** Fixed at placement: the involved modules that the configuration requires. */
    requiredModules: text("required_modules").array().notNull(),
    /** Fixed at placement: every module the order involves. */
    involvedModules: text("involved_modules").array().notNull(),
    idempotencyKey: text("idempotency_key").notNull(),
    /** Hash of what placeOrder was called with, to tell a retry from a reused key. */
    requestHash: text("request_hash").notNull(),
    placedEventId: uuid("placed_event_id").notNull(),
    paymentReference: text("payment_reference"),
    confirmedEventId: uuid("confirmed_event_id"),
    cancellationReason: text("cancellation_reason"),
    cancelledEventId: uuid("cancelled_event_id"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("sales_orders_customer_idempotency").on(t.customerId, t.idempotencyKey),
    index("sales_orders_customer_created").on(t.customerId, t.createdAt),
    index("sales_orders_created").on(t.createdAt),
    // The console's order inspector finds orders by contact email.
    index("sales_orders_contact_email").on(t.contactEmail),
    check("sales_orders_status", sql`${t.status} in (${inList(orderStatuses)})`),
  ],
);

export const orderLines = pgTable(
  "order_lines",
  {
    orderId: uuid("order_id")
      .notNull()
      .references(() => salesOrders.id),
    position: integer("position").notNull(),
    sku: text("sku").notNull(),
    name: text("name").notNull(),
    kind: text("kind").notNull(),
    quantity: integer("quantity").notNull(),
    unitAmount: integer("unit_amount").notNull(),
    currency: text("currency").notNull(),
  },
  (t) => [uniqueIndex("order_lines_order_position").on(t.orderId, t.position)],
);

export type OrderRow = typeof salesOrders.$inferSelect;
export type OrderLineRow = typeof orderLines.$inferSelect;

/**
 * What a module heard about an order before it had a row for it: "cancelled"
 * (so work it starts later is rolled back at once) or a fact it will need when
 * the row comes (e.g. "invoice-paid"). Each module reads and writes its own.
 */
export const moduleNotes = pgTable(
  "module_notes",
  {
    module: text("module").notNull(),
    orderId: uuid("order_id").notNull(),
    note: text("note").notNull(),
    notedAt: timestamp("noted_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("module_notes_module_order_note").on(t.module, t.orderId, t.note)],
);

/** Partners' progress reports, by idempotency key: a retried report answers as the first did. */
export const partnerReports = pgTable(
  "partner_reports",
  {
    orderId: uuid("order_id").notNull(),
    module: text("module").notNull(),
    idempotencyKey: text("idempotency_key").notNull(),
    state: text("state").notNull(),
    eventId: uuid("event_id").notNull(),
    reportedAt: timestamp("reported_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("partner_reports_order_module_key").on(t.orderId, t.module, t.idempotencyKey)],
);
