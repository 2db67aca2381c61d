import { and, asc, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import { type Database, type Db, query, queryAtCommit, type Tx } from "../db/database.ts";
import { wholeRow } from "../db/rows.ts";
import { faultPoint } from "../faults.ts";
import type { Logger } from "../log.ts";
import { type Bus, type BusEvent, publicationId } from "./bus.ts";
import { outboxChannel } from "./outbox.ts";
import { type OrderEventRow, orderEvents } from "./tables.ts";

export interface RelayOptions {
  /** Rows claimed and published per transaction. Default 200. */
  batchSize?: number;
  /** The safety-net poll, for a missed NOTIFY or a relay that took over. Default 1000 ms. */
  pollMs?: number;
  /** The bus's duplicate window (NATS_DUPLICATE_WINDOW_MS). Default 120000 ms. */
  duplicateWindowMs?: number;
  /**
   * Partitions (RELAY_PARTITIONS), each publishing its own orders in a
   * transaction of its own, at most `relaySlots`. Default 1.
   */
  partitions?: number;
  onPublished?: (events: BusEvent[]) => void;
}

/**
 * Every order belongs to one of a fixed number of slots, by a hash of its id
 * (`hashtext(order_id::text) & 63`, computed where the relay claims, so no
 * column stores it). A transaction publishes only the orders of the slots whose
 * advisory lock it holds (`slotLock + slot`), so one slot, and with it each
 * order, has one publisher at a time and keeps its order on the stream.
 *
 * A partition is a set of slots (partition p of K: the slots s with s mod K =
 * p), and K only says how many transactions a relay runs at once. Because the
 * lock is the slot's, not the partition's, relays with different K (a rolling
 * deploy that changes RELAY_PARTITIONS) exclude each other slot by slot and
 * never publish one order from two places: K changes without draining the outbox.
 */
export const relaySlots = 64;
const slotLock = 7_301_990_100;

/**
 * The single relay lock of the relays before partitions, taken exclusively by
 * them. Relays with partitions take it shared: they run together, and never
 * beside an older relay during a rolling upgrade.
 */
const relayLock = 7_301_990_002;

/**
 * Bounds on the relay's transaction, so that a relay paused (SIGSTOP) or cut
 * off while it holds the relay lock and its row locks loses them within
 * seconds, and another relay takes over. Publishing happens inside the
 * transaction, so the idle bound must leave room for a slow ack.
 */
const transactionLimits = { idleMs: 5_000, statementMs: 10_000, lockMs: 5_000 };

/** Events seen acked but not marked, remembered at most this many (the oldest are forgotten first). */
const rememberedAcks = 100_000;

export function toBusEvent(row: OrderEventRow): BusEvent {
  return {
    id: row.id,
    type: row.type,
    orderId: row.orderId,
    occurredAt: row.occurredAt.toISOString(),
    payload: row.payload,
    ...(row.replays > 0 ? { replay: row.replays } : {}),
  };
}

/** The bus's duplicate-detection key of a row, without building its event. */
function publicationOf(row: OrderEventRow): string {
  return publicationId({ id: row.id, replay: row.replays > 0 ? row.replays : undefined });
}

interface Published {
  row: OrderEventRow;
  sequence: number;
}

interface Parked {
  row: OrderEventRow;
  error: string;
}

/**
 * Publishes the outbox to the bus. It claims unpublished rows rather than
 * reading past the last id it saw, so a row that a slow transaction commits
 * late (an older seq, visible after a newer one) is never skipped.
 *
 * The stream holds each order's events in the outbox's order: a batch goes
 * out in waves (the first unpublished event of each order, then the second,
 * ...), and an order whose event is refused sends nothing more until the next
 * batch. An event the bus refuses for good is parked, and with it the rest of
 * its order; every other order flows.
 *
 * No event is stored twice, even past the bus's duplicate window: an event
 * seen acked but not marked (the marking transaction failed) is marked from
 * memory without publishing, and an event old enough to have gone out before
 * the window began is looked up in the stream first.
 */
export class Relay {
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private readonly loops: Loop[];
  private stopped = false;
  /** Publication id -> stream sequence, for events acked whose marking did not commit yet. */
  private readonly acked = new Map<string, number>();

  constructor(
    private readonly database: Database,
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly options: RelayOptions = {},
  ) {
    const partitions = options.partitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > relaySlots)
      throw new Error(`relay partitions: ${partitions} is not a whole number from 1 to ${relaySlots}`);
    this.loops = Array.from({ length: partitions }, (_, partition) => ({
      partition,
      running: undefined,
      again: false,
      scan: true,
      refused: false,
      notified: new Set(),
    }));
  }

  async start(): Promise<void> {
    this.unlisten = await this.database.listen(outboxChannel, (payload) => this.wake(payload));
    this.timer = setInterval(() => this.wake(), this.options.pollMs ?? 1000);
    this.wake();
  }

  /**
   * Each partition publishes until its part of the outbox is empty; a wake-up
   * during its run makes one more run. `notified`: the seqs a commit's NOTIFY
   * listed (see the outbox's trigger), which each partition looks up by seq;
   * without them (the poll, a NOTIFY that lists none, a LISTEN connection
   * back after a loss), each partition scans its part of the outbox. One
   * NOTIFY wakes every partition: it does not say whose orders it wrote.
   */
  wake(notified?: string): void {
    const seqs = notified ? notified.split(",").map(Number) : [];
    const listed = seqs.length > 0 && seqs.every(Number.isSafeInteger);
    for (const loop of this.loops) {
      // A row the bus did not take waits for the next wake-up, as before seqs were listed: a scan then.
      if (listed && !loop.refused) for (const seq of seqs) loop.notified.add(seq);
      else loop.scan = true;
      this.wakeLoop(loop);
    }
  }

  private wakeLoop(loop: Loop): void {
    if (this.stopped) return;
    if (loop.running) {
      loop.again = true;
      return;
    }
    loop.running = this.drain(loop).finally(() => {
      loop.running = undefined;
      if (loop.again) {
        loop.again = false;
        this.wakeLoop(loop);
      }
    });
  }

  private async drain(loop: Loop): Promise<void> {
    const { partition } = loop;
    try {
      while (!this.stopped) {
        const scan = loop.scan;
        let seqs: number[] | undefined;
        if (scan) {
          loop.scan = false;
          loop.refused = false;
          // The scan finds whatever was notified before it began.
          loop.notified.clear();
        } else {
          if (loop.notified.size === 0) break;
          // Rows another partition's slots hold, or that a relay elsewhere has taken, are simply not
          // found; a row held back behind an earlier one of its order waits for the next scan.
          seqs = [...loop.notified].sort((a, b) => a - b).slice(0, this.batchSize);
          for (const seq of seqs) loop.notified.delete(seq);
        }
        const { settled, claimed } = await this.publishBatch(partition, seqs);
        if (settled < claimed) loop.refused = true;
        // A scan that took fewer rows than it could took every row there was: a commit since then
        // NOTIFYs, which runs the loop again, so no empty round is needed to find out.
        if (scan && settled > 0 && claimed >= this.batchSize) loop.scan = true;
      }
    } catch (error) {
      // The rows stay unpublished; the next wake-up (or poll) scans for them.
      loop.refused = true;
      this.logger.warn({ err: String(error), partition }, "relay could not publish, will retry");
    }
  }

  /** The age past which an unmarked event may have been published before the window began. */
  private get unsureAfterMs(): number {
    const window = this.options.duplicateWindowMs ?? 120_000;
    // A quarter of the window covers the clocks of the writer, the relay and NATS disagreeing.
    return window - window / 4;
  }

  private get batchSize(): number {
    return this.options.batchSize ?? 200;
  }

  /**
   * One claimed batch: published, then marked, in one transaction. Returns how
   * many rows it claimed and how many of them it settled (published or parked).
   * `seqs`: only those rows (see claim).
   */
  async publishBatch(partition = 0, seqs?: number[]): Promise<{ claimed: number; settled: number }> {
    const { published, parked, claimed } = await this.database.db.transaction(async (tx) => {
      const rows = await this.claim(tx, partition, seqs);
      if (rows.length === 0) return { published: [], parked: [], claimed: 0 };
      const settled = await this.settledBefore(rows);
      const pending = rows.filter((row) => !settled.has(row));
      faultPoint("relay:before-publish");
      const outcome = await this.publishInOrder(pending);
      faultPoint("relay:after-publish");
      for (const { row, sequence } of outcome.published) this.remember(row, sequence);
      const done = [...[...settled].map(([row, sequence]) => ({ row, sequence })), ...outcome.published];
      await mark(tx, done);
      await park(tx, outcome.parked);
      return { published: done, parked: outcome.parked, claimed: rows.length };
    });
    if (published.length > 0) faultPoint("relay:after-mark");
    for (const { row } of published) this.acked.delete(publicationOf(row));
    for (const { row, error } of parked) {
      this.logger.error(
        { eventId: row.id, orderId: row.orderId, type: row.type, err: error },
        "relay parked an event the bus refuses; its order's later events wait until an admin republishes it",
      );
    }
    if (published.length > 0) this.options.onPublished?.(published.map(({ row }) => toBusEvent(row)));
    return { claimed, settled: published.length + parked.length };
  }

  /**
   * Takes the locks of the partition's slots that no other transaction holds,
   * then the unpublished rows of their orders that are not parked nor behind a
   * parked one: the oldest, or those of `seqs`. A row of `seqs` must not be
   * behind an unpublished row of its order that is not among them (one whose
   * NOTIFY was missed while the LISTEN connection was down, say): it goes out
   * after that one, with the next scan (the poll).
   *
   * Why seqs: marking a row published leaves its entry in
   * order_events_unpublished until a vacuum, and the oldest-first scan walks
   * every such entry and its heap row (5-7 ms a claim behind 20,000 of them,
   * 50-125 ms behind 180,000; PostgreSQL vacuums at a fifth of the table dead,
   * or never where autovacuum is off). Looked up by seq, a claim reads its own
   * rows and their orders' earlier ones, whatever is dead around them. (A scan
   * that went on from where the last batch ended would need the same check
   * for every row, against rows that committed late behind it: that check,
   * per row, cost more than the walk it saved on the relay benchmark, whose
   * orders have a hundred events each.)
   */
  private async claim(tx: Tx, partition: number, seqs?: number[]): Promise<OrderEventRow[]> {
    const { idleMs, statementMs, lockMs } = transactionLimits;
    const listed = seqs ? `{${seqs.join(",")}}` : undefined;
    // OFFSET 0 keeps the order's rows a subquery of their own, read through (order_id, seq): folded into
    // the outer query, PostgreSQL may choose order_events_unpublished for "published_at is null and
    // seq < e.seq" and walk the very entries the lookup by seq avoids.
    const heldBack =
      listed !== undefined
        ? sql`e.seq = any(${listed}::bigint[])
          and not exists (select 1 from (select seq, published_at, parked_at from ${orderEvents} mine
              where mine.order_id = e.order_id offset 0) earlier
            where earlier.seq < e.seq and earlier.published_at is null
              and (earlier.parked_at is not null or earlier.seq <> all(${listed}::bigint[])))`
        : sql`not exists (select 1 from ${orderEvents} held where held.order_id = e.order_id
            and held.parked_at is not null and held.published_at is null and held.seq < e.seq)`;
    // One statement: the transaction's bounds (for the statements after it; this one waits on no lock),
    // the slot locks (CASE: the relay lock first, as its order matters) and the slots' rows.
    return eventRow.all(
      tx,
      sql`with bounds as materialized (select
          set_config('idle_in_transaction_session_timeout', ${String(idleMs)}, true),
          set_config('statement_timeout', ${String(statementMs)}, true),
          set_config('lock_timeout', ${String(lockMs)}, true)),
        slots as materialized (select slot from bounds,
          generate_series(${partition}::int, ${relaySlots - 1}::int, ${this.loops.length}::int) as slot
          where case when pg_try_advisory_xact_lock_shared(${relayLock})
            then pg_try_advisory_xact_lock(${slotLock}::bigint + slot) else false end)
        select ${eventRow.columns} from ${orderEvents} e
        where e.published_at is null and e.parked_at is null
          and (hashtext(e.order_id::text) & ${relaySlots - 1}) in (select slot from slots)
          and ${heldBack}
        order by e.seq limit ${this.batchSize} for update of e skip locked`,
    );
  }

  /**
   * The claimed rows that are in the stream already: those this relay saw
   * acked, and those old enough that a relay that died before marking may
   * have published them before the duplicate window began (looked up in the
   * stream; young rows are not, the window drops their repeats).
   */
  private async settledBefore(rows: OrderEventRow[]): Promise<Map<OrderEventRow, number>> {
    const settled = new Map<OrderEventRow, number>();
    const unsure: OrderEventRow[] = [];
    const now = Date.now();
    for (const row of rows) {
      const sequence = this.acked.get(publicationOf(row));
      if (sequence !== undefined) settled.set(row, sequence);
      // A replay that went out twice is harmless (inboxes know it, feeds skip replays): not worth a walk.
      else if (row.replays === 0 && now - row.occurredAt.getTime() > this.unsureAfterMs) unsure.push(row);
    }
    if (unsure.length > 0) {
      const found = await this.bus.lookup(unsure.map(toBusEvent));
      for (const row of unsure) {
        const sequence = found.get(publicationOf(row));
        if (sequence === undefined) continue;
        settled.set(row, sequence);
        // Should this transaction not commit, the next claim need not walk the stream again.
        this.remember(row, sequence);
      }
      if (found.size > 0)
        this.logger.warn(
          { events: found.size },
          "relay found events in the stream that were never marked published; marking them without publishing",
        );
    }
    return settled;
  }

  /**
   * Publishes in waves, the k-th wave holding the k-th event of each order,
   * so that no event goes out before its order's earlier ones are stored.
   */
  private async publishInOrder(rows: OrderEventRow[]): Promise<{ published: Published[]; parked: Parked[] }> {
    const published: Published[] = [];
    const parked: Parked[] = [];
    const queues = new Map<string, OrderEventRow[]>();
    for (const row of rows) {
      const queue = queues.get(row.orderId);
      if (queue) queue.push(row);
      else queues.set(row.orderId, [row]);
    }
    const startedAt = Date.now();
    let wave = [...queues.values()].map((queue) => queue.shift()!);
    while (wave.length > 0 && !this.stopped) {
      // A batch stalled this long would publish past the duplicate window: leave the rest to the next one.
      if (Date.now() - startedAt > this.unsureAfterMs) break;
      const answers = await this.bus
        .publish(wave.map(toBusEvent))
        .catch((error: unknown) =>
          wave.map(() => ({ ok: false as const, error: error as Error, lasting: false })),
        );
      const next: OrderEventRow[] = [];
      for (const [i, row] of wave.entries()) {
        const answer = answers[i]!;
        if (answer.ok) {
          published.push({ row, sequence: answer.sequence });
          const following = queues.get(row.orderId)!.shift();
          if (following) next.push(following);
        } else if (answer.lasting) {
          parked.push({ row, error: answer.error.message });
        } else {
          this.logger.warn(
            { eventId: row.id, err: answer.error.message },
            "relay: the bus refused an event, its order waits for the next batch",
          );
        }
      }
      wave = next;
    }
    return { published, parked };
  }

  private remember(row: OrderEventRow, sequence: number): void {
    const key = publicationOf(row);
    this.acked.delete(key);
    this.acked.set(key, sequence);
    if (this.acked.size > rememberedAcks) this.acked.delete(this.acked.keys().next().value!);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.unlisten?.();
    await Promise.all(this.loops.map((loop) => loop.running));
  }
}

/** One partition's run: at most one transaction at a time, and one more when woken during it. */
interface Loop {
  partition: number;
  running: Promise<void> | undefined;
  again: boolean;
  /** Scan the partition's part of the outbox, oldest first, on the next run. */
  scan: boolean;
  /** The last batch left rows the bus did not take: the next wake-up scans. */
  refused: boolean;
  /** Seqs NOTIFYs listed that the partition has not looked up yet. */
  notified: Set<number>;
}

/** An outbox row, read by the claim's SQL template (see wholeRow). */
const eventRow = wholeRow(orderEvents);

/** Parks the events the bus refused for good, with their errors, in one statement. */
async function park(tx: Tx, parked: Parked[]): Promise<void> {
  if (parked.length === 0) return;
  const refusals = sql.join(
    parked.map(({ row, error }) => sql`(${row.id}::uuid, ${error})`),
    sql`, `,
  );
  await tx.execute(sql`
    update order_events set parked_at = now(), park_error = refused.error
    from (values ${refusals}) as refused(id, error)
    where order_events.id = refused.id`);
}

/**
 * Records each event's stream position; a replayed event keeps its first one
 * (resumes count from there). Two array parameters, whatever the batch's size:
 * cheap to build and to parse.
 */
async function mark(tx: Tx, done: Published[]): Promise<void> {
  if (done.length === 0) return;
  const ids = `{${done.map(({ row }) => row.id).join(",")}}`;
  const sequences = `{${done.map(({ sequence }) => sequence).join(",")}}`;
  // The batch's last statement: it goes with the commit.
  await queryAtCommit(
    tx,
    sql`
    update order_events set published_at = now(), stream_seq = coalesce(stream_seq, published.seq)
    from unnest(${ids}::uuid[], ${sequences}::bigint[]) as published(id, seq)
    where order_events.id = published.id`,
  );
}

/** The parked events, oldest first (admins). */
export function parkedEvents(db: Db, limit: number) {
  return db
    .select()
    .from(orderEvents)
    .where(and(isNotNull(orderEvents.parkedAt), isNull(orderEvents.publishedAt)))
    .orderBy(asc(orderEvents.seq))
    .limit(limit);
}

export async function countParked(db: Db): Promise<number> {
  const [row] = await query<{ n: number }>(
    db,
    sql`select count(*)::int as n from order_events where parked_at is not null and published_at is null`,
  );
  return row?.n ?? 0;
}

/** Unparks events so the relay tries them again; answers the rows it unparked. */
export async function unpark(db: Db, ids: string[]): Promise<OrderEventRow[]> {
  if (ids.length === 0) return [];
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(orderEvents)
      .set({ parkedAt: null, parkError: null })
      .where(and(inArray(orderEvents.id, ids), isNotNull(orderEvents.parkedAt)))
      .returning();
    await tx.execute(sql`select pg_notify(${outboxChannel}, '')`);
    return rows;
  });
}
