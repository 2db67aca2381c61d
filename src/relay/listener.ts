import type { Db, Tx } from "../db/database.ts";
import type { Logger } from "../log.ts";
import type { Bus, BusEvent, Consumption, Delivery, Outcome } from "./bus.ts";
import { type FailureVerdict, recordFailure, settle } from "./dead-letters.ts";
import { processedEvents } from "./tables.ts";

/**
 * An event a listener cannot read (a payload that is not what its type
 * promises): no retry can help, so it goes to dead_letters at once.
 */
export class MalformedEvent extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedEvent";
  }
}

/** A reaction to events, run by the runner below with at-least-once delivery and exactly-once effect. */
export interface Listener {
  /** The durable consumer's name; also the inbox's consumer column. */
  name: string;
  /**
   * The event types it handles. The bus is asked for these only; any other
   * it delivers anyway (a server that filters on one subject only) is
   * acknowledged without a transaction.
   */
  types: readonly string[];
  /** Runs inside the transaction that also records the event in the inbox. */
  handle(tx: Tx, event: BusEvent): Promise<void>;
}

export interface RetryPolicy {
  /** Failed tries of the handler before the event goes to dead_letters. Default 6. */
  maxAttempts: number;
  /** Wait before the next try after the `attempt`-th failure. Default 250 ms × 4^(attempt−1), at most 60 s. */
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
 * effect. A failure is counted and retried with back-off; after the last try
 * the event goes to dead_letters and the stream moves on. Only failures count:
 * the bus's delivery count also grows when a process stops or dies holding
 * the event, and deploys must not use an event's tries up.
 */
export async function deliver(deps: ListenerDeps, listener: Listener, delivery: Delivery): Promise<Outcome> {
  const { event, attempt } = delivery;
  if (!listener.types.includes(event.type)) return { kind: "done" };
  // A dead-letter replay is for the consumers that gave up on the event; the others have had it.
  if (event.replayFor && !event.replayFor.includes(listener.name)) return { kind: "done" };
  const retry = deps.retry ?? defaultRetryPolicy;
  // Only an event that came before, or a replay, can have failures or dead letters to settle:
  // a first delivery skips the two statements.
  const seenBefore = attempt > 1 || event.replay !== undefined;
  try {
    const applied = await deps.db.transaction(async (tx) => {
      const fresh = await tx
        .insert(processedEvents)
        .values({ consumer: listener.name, eventId: event.id })
        .onConflictDoNothing()
        .returning({ eventId: processedEvents.eventId });
      if (fresh.length > 0) await listener.handle(tx, event);
      if (seenBefore) await settle(tx, listener.name, event.id);
      return fresh.length > 0;
    });
    deps.onHandled?.(listener.name, event, applied ? "applied" : "duplicate");
    return { kind: "done" };
  } catch (error) {
    const message = describe(error);
    const log = {
      listener: listener.name,
      eventId: event.id,
      type: event.type,
      orderId: event.orderId,
      delivery: attempt,
    };
    let verdict: FailureVerdict;
    try {
      const attempts = error instanceof MalformedEvent ? 1 : retry.maxAttempts;
      verdict = await recordFailure(deps.db, listener.name, event, message, attempts);
    } catch (countError) {
      // Not counted, so not given up on: a database that does not answer is no reason to.
      deps.logger.warn({ ...log, err: message, countErr: String(countError) }, "listener failed, will retry");
      deps.onHandled?.(listener.name, event, "failed");
      // The deliveries so far stand in for the failures it could not count: the wait grows all the same.
      return { kind: "retry", delayMs: retry.backoffMs(Math.min(attempt, retry.maxAttempts)) };
    }
    if (verdict.kind === "retry") {
      deps.logger.warn({ ...log, attempt: verdict.failures, err: message }, "listener failed, will retry");
      deps.onHandled?.(listener.name, event, "failed");
      return { kind: "retry", delayMs: retry.backoffMs(verdict.failures) };
    }
    if (verdict.kind === "dead") {
      deps.logger.error(
        { ...log, attempt: verdict.failures, err: message },
        "listener gave up; event is in dead_letters",
      );
      deps.onHandled?.(listener.name, event, "dead");
    }
    return { kind: "done" };
  }
}

/** The error and its causes: the query builder wraps the database's own message, the one an operator needs. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const text = `${error.name}: ${error.message}`;
  return error.cause === undefined ? text : `${text}; cause: ${describe(error.cause)}`;
}

export function runListener(deps: ListenerDeps, listener: Listener): Promise<Consumption> {
  return deps.bus.consume({
    name: listener.name,
    types: listener.types,
    concurrency: deps.concurrency ?? 4,
    handle: (delivery) => deliver(deps, listener, delivery),
  });
}
