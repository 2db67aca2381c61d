import { sql } from "drizzle-orm";
import { type Db, query } from "../db/database.ts";
import { outboxChannel } from "./outbox.ts";

export interface RepublishRange {
  /** Events that occurred at or after this instant... */
  from: Date;
  /** ...and before this one. */
  to: Date;
}

export type RepublishRefusal = { refused: string };

/**
 * Why a range cannot be republished, or undefined when it can. Only events
 * still inside the deduplication horizon (INBOX_RETENTION_HOURS) qualify:
 * an older event's inbox rows may have been swept, so a listener that
 * handled it would not know it and would apply it a second time.
 */
export function refuseRange(
  { from, to }: RepublishRange,
  inboxRetentionMs: number,
  now = new Date(),
): string | undefined {
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return "from and to must be instants";
  if (from >= to) return "from must be before to";
  const horizon = new Date(now.getTime() - inboxRetentionMs);
  if (from < horizon)
    return `from is older than the deduplication horizon (${horizon.toISOString()}, INBOX_RETENTION_HOURS): the listeners' inboxes no longer hold every event before it, and would apply them again`;
  return undefined;
}

/**
 * Has the relay publish again the outbox events that occurred in the range,
 * after a broker lost them (acknowledged writes that a JetStream node lost
 * before it synced them to disk, a stream deleted by mistake). PostgreSQL is
 * the source of truth; this only puts its events on the stream once more.
 *
 * Each event goes out as a replay (`replays` + 1, published under a new
 * message id `<id>:replay-<n>`), so the stream's duplicate window does not
 * drop it as a repeat of the first publication, and the live feeds skip it
 * (subscribers had the change the first time). Every listener gets it: those
 * that handled it find their inbox row and do nothing, those that never got
 * it handle it once. The relay claims the rows like new ones, in the outbox's
 * order, so each order's events reach the stream in their order again (and
 * before any later event of that order not yet published).
 *
 * Published events only: an unpublished or parked one is on its way already.
 * Answers how many events it handed to the relay.
 */
export async function republishRange(db: Db, { from, to }: RepublishRange): Promise<number> {
  return db.transaction(async (tx) => {
    const [row] = await query<{ n: number }>(
      tx,
      sql`with republished as (
            update order_events set published_at = null, replays = replays + 1
             where occurred_at >= ${from.toISOString()}::timestamptz and occurred_at < ${to.toISOString()}::timestamptz
               and published_at is not null
            returning 1)
          select count(*)::int as n from republished`,
    );
    await tx.execute(sql`select pg_notify(${outboxChannel}, '')`);
    return row?.n ?? 0;
  });
}
