import { sql } from "drizzle-orm";
import { type Executor, query } from "../db/database.ts";

export interface OutboxBacklog {
  /** Events committed and not published yet, parked ones left out (they are counted on their own). */
  waiting: number;
  /** When the oldest of them was committed; null when none waits. */
  oldest: Date | null;
}

/** What the relay has still to publish: the outbox lag is the age of the oldest. */
export async function outboxBacklog(db: Executor): Promise<OutboxBacklog> {
  // The unpublished rows are few and have an index of their own (order_events_unpublished).
  const [row] = await query<{ waiting: number; oldest: string | Date | null }>(
    db,
    sql`select count(*)::int as waiting, min(occurred_at) as oldest
        from order_events where published_at is null and parked_at is null`,
  );
  const oldest = row?.oldest ?? null;
  return { waiting: row?.waiting ?? 0, oldest: oldest === null ? null : new Date(oldest) };
}

/** Seconds since the oldest waiting event was committed; 0 when none waits. */
export function outboxLagSeconds(backlog: OutboxBacklog, now = Date.now()): number {
  return backlog.oldest ? Math.max(0, (now - backlog.oldest.getTime()) / 1000) : 0;
}
