import { asc, isNull, sql } from "drizzle-orm";
import { type Database, query } from "../db/database.ts";
import type { Logger } from "../log.ts";
import type { Bus, BusEvent } from "./bus.ts";
import { outboxChannel } from "./outbox.ts";
import { type OrderEventRow, orderEvents } from "./tables.ts";

export interface RelayOptions {
  /** Rows claimed and published per transaction. Default 200. */
  batchSize?: number;
  /** The safety-net poll, for a missed NOTIFY or a relay that took over. Default 1000 ms. */
  pollMs?: number;
  onPublished?: (events: BusEvent[]) => void;
}

/**
 * Only the relay holding this transaction lock publishes; the others wait
 * their turn. One publisher at a time keeps the stream in commit order, so
 * the changes of one order reach the bus in the order they happened.
 */
const relayLock = 7_301_990_002;

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

/**
 * Publishes the outbox to the bus. It claims unpublished rows rather than
 * reading past the last id it saw, so a row that a slow transaction commits
 * late (an older seq, visible after a newer one) is never skipped.
 */
export class Relay {
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly database: Database,
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly options: RelayOptions = {},
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.database.listen(outboxChannel, () => this.wake());
    this.timer = setInterval(() => this.wake(), this.options.pollMs ?? 1000);
    this.wake();
  }

  /** Publishes until the outbox is empty; a wake-up during a run makes one more run. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (!this.stopped && (await this.publishBatch()) > 0) {}
    } catch (error) {
      // The rows stay unpublished; the next poll tries again.
      this.logger.warn({ err: String(error) }, "relay could not publish, will retry");
    }
  }

  /** One claimed batch: published, then marked, in one transaction. Returns how many. */
  async publishBatch(): Promise<number> {
    const batchSize = this.options.batchSize ?? 200;
    const published = await this.database.db.transaction(async (tx) => {
      const [lock] = await query<{ locked: boolean }>(
        tx,
        sql`select pg_try_advisory_xact_lock(${relayLock}) as locked`,
      );
      if (!lock?.locked) return [];
      const rows = await tx
        .select()
        .from(orderEvents)
        .where(isNull(orderEvents.publishedAt))
        .orderBy(asc(orderEvents.seq))
        .limit(batchSize)
        .for("update", { skipLocked: true });
      if (rows.length === 0) return [];
      const events = rows.map(toBusEvent);
      // A crash after this and before the commit publishes the batch again: the bus drops the repeats by id.
      const sequences = await this.bus.publish(events);
      const positions = sql.join(
        events.map((e, i) => sql`(${e.id}::uuid, ${sequences[i]}::bigint)`),
        sql`, `,
      );
      // A replayed event keeps its first position: resumable subscriptions count from there.
      await tx.execute(sql`
        update order_events set published_at = now(), stream_seq = coalesce(stream_seq, published.seq)
        from (values ${positions}) as published(id, seq)
        where order_events.id = published.id`);
      return events;
    });
    if (published.length > 0) this.options.onPublished?.(published);
    return published.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.unlisten?.();
    await this.running;
  }
}
