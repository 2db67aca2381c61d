import { sql } from "drizzle-orm";
import { type Db, query, type Tx } from "../db/database.ts";
import { textArray } from "../db/rows.ts";
import { describeError } from "../errors.ts";
import { faultPoint } from "../faults.ts";
import type { Logger } from "../log.ts";
import {
  type Bus,
  type BusEvent,
  type Consumption,
  type Delivery,
  defaultBatchSize,
  type Outcome,
} from "./bus.ts";
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

/**
 * A reaction to events, run by the runner below with at-least-once delivery
 * and exactly-once effect: one event at a time, or a batch at once.
 */
export type Listener = EventListener | BatchListener;

export interface EventListener extends ListenerBase {
  /** Runs inside the transaction that also records the event in the inbox. */
  handle(tx: Tx, event: BusEvent): Promise<void>;
  handleBatch?: never;
}

export interface BatchListener extends ListenerBase {
  /**
   * Runs for a batch's fresh events, in stream order, in the transaction that
   * records them in the inbox (a single delivery is a batch of one): the
   * place to read what the batch needs in one statement, take its locks at
   * once and in a fixed order (so two batches never deadlock), and write what
   * it decided in bulk. What it learns lives in its own call, so nothing
   * outlives the transaction.
   */
  handleBatch(tx: Tx, events: BusEvent[]): Promise<void>;
  handle?: never;
}

interface ListenerBase {
  /** The durable consumer's name; also the inbox's consumer column. */
  name: string;
  /**
   * The event types it handles. The bus is asked for these only; any other
   * it delivers anyway (a server that filters on one subject only) is
   * acknowledged without a transaction.
   */
  types: readonly string[];
  /**
   * True when the event alone shows there is nothing to do (a module the
   * order does not involve): a first delivery is then acknowledged without a
   * transaction or an inbox row, as it has no effect to make once. Pure, and
   * false when unsure; an event it cannot read goes to handle(), which
   * dead-letters it.
   */
  skips?(event: BusEvent): boolean;
  /** See BatchConsumerSpec.gatherMs. Default 0. */
  gatherMs?: number;
  /**
   * Keys of the advisory locks (transaction-scoped, by `hashtext`) that a
   * transaction of these events must hold before it reads: taken in the
   * inbox insert's statement, before its inbox rows and in one fixed order,
   * so two transactions never wait on each other in a circle, and the
   * listener's first read, a statement later, sees what the lock's last
   * holder committed. Pure. Default: none.
   */
  lockKeys?(events: BusEvent[]): string[];
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
  /** Most deliveries handled in one transaction (LISTENER_BATCH). Default 64. */
  batchSize?: number;
  onHandled?: (
    listener: string,
    event: BusEvent,
    outcome: "applied" | "duplicate" | "failed" | "dead",
  ) => void;
}

/**
 * The longest wait before trying an event again while the database does not
 * answer: a 3 s restart otherwise held events back for up to a minute, as
 * each refused connection counted as a delivery (the fault suite).
 */
export const databaseAwayRetryMs = 5_000;

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
  // A dead-letter replay is for the consumers that gave up on the event; the others have had it.
  if (!hears(listener, delivery)) return { kind: "done" };
  const retry = deps.retry ?? defaultRetryPolicy;
  // Only an event that came before, or a replay, can have failures or dead letters to settle:
  // a first delivery skips the two statements.
  const seenBefore = attempt > 1 || event.replay !== undefined;
  try {
    const applied = await deps.db.transaction(async (tx) => {
      const fresh = await recordInInbox(tx, listener.name, [event.id], listener.lockKeys?.([event]));
      if (fresh.length > 0) await handleFresh(tx, listener, [event]);
      if (seenBefore) await settle(tx, listener.name, event.id);
      faultPoint("listener:mid-batch");
      return fresh.length > 0;
    });
    deps.onHandled?.(listener.name, event, applied ? "applied" : "duplicate");
    return { kind: "done" };
  } catch (error) {
    const message = describeError(error);
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
      // The deliveries so far stand in for the failures it could not count: the wait grows all the same,
      // but only to a few seconds: the database is away, and each try costs it nothing.
      const delayMs = Math.min(databaseAwayRetryMs, retry.backoffMs(Math.min(attempt, retry.maxAttempts)));
      return { kind: "retry", delayMs };
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

/**
 * Records the events in the consumer's inbox; answers those it did not hold
 * yet. One statement, one text, whatever the batch: the lock keys' locks
 * first (the insert waits on them; none without keys), then the inbox rows.
 */
async function recordInInbox(
  tx: Tx,
  consumer: string,
  eventIds: string[],
  lockKeys: string[] = [],
): Promise<string[]> {
  const rows = await query<{ event_id: string }>(
    tx,
    sql`with locks as materialized (
        select pg_advisory_xact_lock(h) from (
          select distinct hashtext(k) as h from unnest(${textArray(lockKeys)}::text[]) as k order by 1) as keys)
      insert into ${processedEvents} (consumer, event_id)
      select ${consumer}, unnest(${`{${eventIds.join(",")}}`}::uuid[]) where (select count(*) from locks) >= 0
      on conflict do nothing returning event_id`,
  );
  return rows.map((row) => row.event_id);
}

/** The fresh events, in stream order: in one call when the listener takes batches, else one by one. */
async function handleFresh(tx: Tx, listener: Listener, events: BusEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (listener.handleBatch) return listener.handleBatch(tx, events);
  for (const event of events) await listener.handle(tx, event);
}

/**
 * Handles a batch of deliveries in one transaction: one inbox insert for them
 * all (the ones the inbox knows are duplicates and skipped), then each fresh
 * event's handler in stream order, so the changes of one order keep their
 * order; the bus acks them all after the commit. When the transaction fails,
 * each event is handled again on its own by deliver(): the one that fails is
 * counted, retried and dead-lettered as ever, and its neighbours commit.
 */
export async function deliverBatch(
  deps: ListenerDeps,
  listener: Listener,
  deliveries: Delivery[],
): Promise<Outcome[]> {
  const outcomes: Outcome[] = deliveries.map(() => ({ kind: "done" }));
  const mine = deliveries.flatMap((delivery, index) => (hears(listener, delivery) ? [index] : []));
  if (mine.length === 0) return outcomes;
  if (mine.length === 1) {
    outcomes[mine[0]!] = await deliver(deps, listener, deliveries[mine[0]!]!);
    return outcomes;
  }
  const batch = mine.map((index) => deliveries[index]!);
  let applied: Set<string>;
  try {
    applied = await deps.db.transaction(async (tx) => {
      const fresh = await recordInInbox(
        tx,
        listener.name,
        [...new Set(batch.map((d) => d.event.id))],
        listener.lockKeys?.(batch.map((d) => d.event)),
      );
      const pending = new Set(fresh);
      // A redelivery of an event the same batch holds twice is handled once.
      const events = batch.flatMap(({ event }) => (pending.delete(event.id) ? [event] : []));
      await handleFresh(tx, listener, events);
      for (const { event, attempt } of batch)
        if (attempt > 1 || event.replay !== undefined) await settle(tx, listener.name, event.id);
      faultPoint("listener:mid-batch");
      return new Set(events.map((e) => e.id));
    });
  } catch (error) {
    deps.logger.debug(
      { listener: listener.name, events: batch.length, err: describeError(error) },
      "listener batch failed, handling its events one by one",
    );
    for (const index of mine) outcomes[index] = await deliver(deps, listener, deliveries[index]!);
    return outcomes;
  }
  for (const { event } of batch)
    deps.onHandled?.(listener.name, event, applied.delete(event.id) ? "applied" : "duplicate");
  return outcomes;
}

/**
 * Whether the listener hears the delivery: its type, on a dead-letter replay
 * only the consumers that gave up on it, and not a first delivery it skips
 * (one that came before may have failures or a dead letter to settle).
 */
function hears(listener: Listener, { event, attempt }: Delivery): boolean {
  if (!listener.types.includes(event.type)) return false;
  if (event.replayFor) return event.replayFor.includes(listener.name);
  return !(attempt === 1 && event.replay === undefined && listener.skips?.(event));
}

export function runListener(deps: ListenerDeps, listener: Listener): Promise<Consumption> {
  return deps.bus.consume({
    name: listener.name,
    types: listener.types,
    batchSize: deps.batchSize ?? defaultBatchSize,
    gatherMs: listener.gatherMs,
    handleBatch: (deliveries) => deliverBatch(deps, listener, deliveries),
  });
}
