import { and, eq, isNull, sql } from "drizzle-orm";
import type { Db, Executor, Tx } from "../db/database.ts";
import type { BusEvent } from "./bus.ts";
import { deadLetters, listenerFailures, orderEvents, processedEvents } from "./tables.ts";

export type DeadLetterRow = typeof deadLetters.$inferSelect;

export type FailureVerdict =
  | { kind: "retry"; failures: number }
  | { kind: "dead"; failures: number }
  /** Nothing to give up on: handled meanwhile, or already waiting in dead_letters (an ack lost after giving up). */
  | { kind: "settled" };

/**
 * Counts a failed try of the consumer at the event, in a transaction of its
 * own (the handler's rolled back), and gives up once it has failed
 * `maxAttempts` times: the dead letter replaces the count.
 */
export function recordFailure(
  db: Db,
  consumer: string,
  event: BusEvent,
  error: string,
  maxAttempts: number,
): Promise<FailureVerdict> {
  return db.transaction(async (tx): Promise<FailureVerdict> => {
    const mine = and(eq(deadLetters.consumer, consumer), eq(deadLetters.eventId, event.id));
    const waiting = await tx
      .select({ id: deadLetters.id })
      .from(deadLetters)
      .where(and(mine, isNull(deadLetters.replayedAt), isNull(deadLetters.settledAt)));
    if (waiting.length > 0) return { kind: "settled" };
    const [count] = await tx
      .insert(listenerFailures)
      .values({ consumer, eventId: event.id, failures: 1, lastError: error })
      .onConflictDoUpdate({
        target: [listenerFailures.consumer, listenerFailures.eventId],
        set: { failures: sql`${listenerFailures.failures} + 1`, lastError: error, lastFailedAt: new Date() },
      })
      .returning({ failures: listenerFailures.failures });
    const failures = count!.failures;
    if (failures < maxAttempts) return { kind: "retry", failures };
    await clearFailures(tx, consumer, event.id);
    const handled = await tx
      .select({ eventId: processedEvents.eventId })
      .from(processedEvents)
      .where(and(eq(processedEvents.consumer, consumer), eq(processedEvents.eventId, event.id)));
    if (handled.length > 0) return { kind: "settled" };
    // A replay that failed again ends its letter; the new one carries the new error.
    await tx
      .update(deadLetters)
      .set({ settledAt: new Date() })
      .where(and(mine, isNull(deadLetters.settledAt)));
    await tx.insert(deadLetters).values({
      consumer,
      eventId: event.id,
      eventType: event.type,
      orderId: event.orderId,
      event: event as unknown as Record<string, unknown>,
      error,
      attempts: failures,
    });
    return { kind: "dead", failures };
  });
}

/** The consumer has handled the event: its failures are forgotten and its dead letters of it settled. */
export async function settle(tx: Tx, consumer: string, eventId: string): Promise<void> {
  await clearFailures(tx, consumer, eventId);
  await tx
    .update(deadLetters)
    .set({ settledAt: new Date() })
    .where(
      and(
        eq(deadLetters.consumer, consumer),
        eq(deadLetters.eventId, eventId),
        isNull(deadLetters.settledAt),
      ),
    );
}

async function clearFailures(tx: Tx, consumer: string, eventId: string): Promise<void> {
  await tx
    .delete(listenerFailures)
    .where(and(eq(listenerFailures.consumer, consumer), eq(listenerFailures.eventId, eventId)));
}

export type Replay =
  | { kind: "published"; event: BusEvent; letter: DeadLetterRow }
  | { kind: "settled" }
  | { kind: "not-found" };

/**
 * Replays the event of a dead letter not settled yet: marks replayed every
 * such dead letter of that event, whichever consumer gave up on it, and hands the
 * publication (for those consumers only) to `publish`, inside the
 * transaction, so a failed publish leaves them waiting.
 */
export function replayDeadLetter(
  db: Db,
  id: number,
  publish: (event: BusEvent) => Promise<unknown>,
): Promise<Replay> {
  return db.transaction(async (tx): Promise<Replay> => {
    const [found] = await tx.select().from(deadLetters).where(eq(deadLetters.id, id));
    if (!found) return { kind: "not-found" };
    // The event's row first: replays of one event queue here, so two admins replaying two of its
    // letters at once cannot deadlock on the letters.
    const [row] = await tx
      .update(orderEvents)
      .set({ replays: sql`${orderEvents.replays} + 1` })
      .where(eq(orderEvents.id, found.eventId))
      .returning();
    if (!row) return { kind: "not-found" };
    const [letter] = await tx.select().from(deadLetters).where(eq(deadLetters.id, id)).for("update");
    if (letter!.settledAt) return { kind: "settled" };
    const now = new Date();
    // Replayed ones not settled yet too: a replay that was lost (an in-process bus restarted before
    // handling it) can be replayed again. A consumer that handled it meanwhile finds its inbox row.
    const letters = await tx
      .update(deadLetters)
      .set({ replayedAt: now })
      .where(and(eq(deadLetters.eventId, row.id), isNull(deadLetters.settledAt)))
      .returning({ consumer: deadLetters.consumer });
    const event: BusEvent = {
      id: row.id,
      type: row.type,
      orderId: row.orderId,
      occurredAt: row.occurredAt.toISOString(),
      payload: row.payload,
      replay: row.replays,
      replayFor: [...new Set(letters.map((l) => l.consumer))].sort(),
    };
    await publish(event);
    return { kind: "published", event, letter: { ...letter!, replayedAt: now } };
  });
}

/** Dead letters no consumer is done with yet: the /metrics gauge operators alert on. */
export async function countWaitingDeadLetters(db: Executor): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(deadLetters)
    .where(isNull(deadLetters.settledAt));
  return row?.n ?? 0;
}
