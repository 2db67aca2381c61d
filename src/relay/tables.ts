import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";

/**
 * The outbox: every state change writes its events here in the same
 * transaction. It is also each order's timeline (ordered by seq).
 */
export const orderEvents = pgTable(
  "order_events",
  {
    id: uuid("id").primaryKey(),
    /** Insertion order. Not commit order: the relay claims unpublished rows rather than reading "seq > last". */
    seq: bigserial("seq", { mode: "number" }).notNull(),
    orderId: uuid("order_id").notNull(),
    type: text("type").notNull(),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    occurredAt: timestamp("occurred_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    publishedAt: timestamp("published_at", { withTimezone: true, mode: "date" }),
    /**
     * The event's position in the bus's stream, set when published. Resumable
     * subscriptions replay from it, so the replay and the live feed follow one
     * and the same order.
     */
    streamSeq: bigint("stream_seq", { mode: "number" }),
    /** How many times an admin has had it published again (dead-letter replay). */
    replays: integer("replays").notNull().default(0),
    /**
     * Set when the bus refused the event for good (larger than the stream
     * allows, say). The relay skips it and the later events of its order, so
     * that order's events stay in order; an admin unparks it once the cause is fixed.
     */
    parkedAt: timestamp("parked_at", { withTimezone: true, mode: "date" }),
    /** The bus's refusal, for the admin. */
    parkError: text("park_error"),
    /**
     * Who caused it, as `role:id` (`customer:c-1`, `partner:psp`, `admin:ops`,
     * `module:logistics`), where the writer knows a caller; null where a
     * listener wrote it (the timeline then names the module from the payload).
     */
    actor: text("actor"),
  },
  (t) => [
    index("order_events_order_seq").on(t.orderId, t.seq),
    index("order_events_unpublished").on(t.seq).where(sql`${t.publishedAt} is null`),
    index("order_events_parked").on(t.orderId, t.seq).where(sql`${t.parkedAt} is not null`),
  ],
);

/** The inbox: one row per (consumer, event) handled, committed with the handler's effect. */
export const processedEvents = pgTable(
  "processed_events",
  {
    consumer: text("consumer").notNull(),
    eventId: uuid("event_id").notNull(),
    processedAt: timestamp("processed_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.consumer, t.eventId] }),
    // The retention sweep's (rows are inserted in about this order): a few pages, next to nothing per insert.
    index("processed_events_processed_at").using("brin", t.processedAt),
  ],
);

/** Events a consumer gave up on after its bounded tries, kept with the last error for an admin. */
export const deadLetters = pgTable(
  "dead_letters",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    consumer: text("consumer").notNull(),
    eventId: uuid("event_id").notNull(),
    eventType: text("event_type").notNull(),
    orderId: uuid("order_id").notNull(),
    event: jsonb("event").$type<Record<string, unknown>>().notNull(),
    error: text("error").notNull(),
    /** Failed tries of the handler (not deliveries: restarts and ack timeouts do not count). */
    attempts: integer("attempts").notNull(),
    failedAt: timestamp("failed_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    replayedAt: timestamp("replayed_at", { withTimezone: true, mode: "date" }),
    /**
     * When the consumer was done with the event after all: it handled it (a replay, or a
     * redelivery), or gave up on its replay again (a newer dead letter). Null while it waits.
     */
    settledAt: timestamp("settled_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("dead_letters_consumer_event").on(t.consumer, t.eventId),
    index("dead_letters_order").on(t.orderId),
    index("dead_letters_waiting").on(t.id).where(sql`${t.settledAt} is null`),
  ],
);

/**
 * A handler's failed tries at an event, so far. Written in a transaction of
 * its own when the handler fails, deleted when the consumer handles the event
 * or gives up on it; the bus's delivery count also grows on restarts and ack
 * timeouts, which are no failures.
 */
export const listenerFailures = pgTable(
  "listener_failures",
  {
    consumer: text("consumer").notNull(),
    eventId: uuid("event_id").notNull(),
    failures: integer("failures").notNull(),
    lastError: text("last_error").notNull(),
    lastFailedAt: timestamp("last_failed_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.consumer, t.eventId] })],
);

export type OrderEventRow = typeof orderEvents.$inferSelect;
