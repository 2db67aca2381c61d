import type { Db, Tx } from "../db/database.ts";
import type { Logger } from "../log.ts";
import type { Bus, BusEvent, Consumption, Delivery, Outcome } from "./bus.ts";
import { deadLetters, processedEvents } from "./tables.ts";

/** A reaction to events, run by the runner below with at-least-once delivery and exactly-once effect. */
export interface Listener {
  /** The durable consumer's name; also the inbox's consumer column. */
  name: string;
  /** Cheap filter on the event type: the others are acknowledged without a transaction. */
  handles(type: string): boolean;
  /** Runs inside the transaction that also records the event in the inbox. */
  handle(tx: Tx, event: BusEvent): Promise<void>;
}

export interface RetryPolicy {
  /** Deliveries before the event goes to dead_letters. Default 6. */
  maxAttempts: number;
  /** Wait before the next delivery after `attempt` failed. Default 250 ms × 4^(attempt−1), at most 60 s. */
  backoffMs(attempt: number): number;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 6,
  backoffMs: (attempt) => Math.min(60_000, 250 * 4 ** (attempt - 1)),
};

export interface ListenerDeps {
  db: Db;
  bus: Bus;
  logger: Logger;
  retry?: RetryPolicy;
  /** Deliveries handled at once. Default 4. */
  concurrency?: number;
  onHandled?: (
    listener: string,
    event: BusEvent,
    outcome: "applied" | "duplicate" | "failed" | "dead",
  ) => void;
}

/**
 * Handles one delivery: the inbox row and the listener's effect commit in one
 * transaction, so a redelivered event finds its inbox row and has no second
 * effect. A failure is retried with back-off; after the last try the event
 * goes to dead_letters and the stream moves on.
 */
export async function deliver(deps: ListenerDeps, listener: Listener, delivery: Delivery): Promise<Outcome> {
  const { event, attempt } = delivery;
  if (!listener.handles(event.type)) return { kind: "done" };
  const retry = deps.retry ?? defaultRetryPolicy;
  try {
    const applied = await deps.db.transaction(async (tx) => {
      const fresh = await tx
        .insert(processedEvents)
        .values({ consumer: listener.name, eventId: event.id })
        .onConflictDoNothing()
        .returning({ eventId: processedEvents.eventId });
      if (fresh.length === 0) return false;
      await listener.handle(tx, event);
      return true;
    });
    deps.onHandled?.(listener.name, event, applied ? "applied" : "duplicate");
    return { kind: "done" };
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const log = {
      listener: listener.name,
      eventId: event.id,
      type: event.type,
      orderId: event.orderId,
      attempt,
    };
    if (attempt < retry.maxAttempts) {
      deps.logger.warn({ ...log, err: message }, "listener failed, will retry");
      deps.onHandled?.(listener.name, event, "failed");
      return { kind: "retry", delayMs: retry.backoffMs(attempt) };
    }
    try {
      await deps.db.insert(deadLetters).values({
        consumer: listener.name,
        eventId: event.id,
        eventType: event.type,
        orderId: event.orderId,
        event: event as unknown as Record<string, unknown>,
        error: message,
        attempts: attempt,
      });
    } catch (deadLetterError) {
      // Not recorded, so not given up on: keep it on the bus.
      deps.logger.error({ ...log, err: String(deadLetterError) }, "cannot write dead letter, will retry");
      return { kind: "retry", delayMs: retry.backoffMs(attempt) };
    }
    deps.logger.error({ ...log, err: message }, "listener gave up; event is in dead_letters");
    deps.onHandled?.(listener.name, event, "dead");
    return { kind: "done" };
  }
}

export function runListener(deps: ListenerDeps, listener: Listener): Promise<Consumption> {
  return deps.bus.consume({
    name: listener.name,
    concurrency: deps.concurrency ?? 4,
    handle: (delivery) => deliver(deps, listener, delivery),
  });
}
