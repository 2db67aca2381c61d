import { sql } from "drizzle-orm";
import { type Db, query } from "../db/database.ts";
import type { Logger } from "../log.ts";

export interface RetentionOptions {
  db: Db;
  logger: Logger;
  /**
   * The deduplication horizon (INBOX_RETENTION_HOURS): an event older than
   * this can no longer come again, since the stream keeps none older
   * (NATS_MAX_AGE_HOURS is at most this) and republishEvents refuses them.
   */
  inboxRetentionMs: number;
  /** Between two sweeps (RETENTION_SWEEP_MS). Default 1 h. */
  intervalMs?: number;
  /** Rows deleted per statement, so no sweep holds many locks or one long transaction. Default 5000. */
  batchSize?: number;
}

export interface Swept {
  /** Inbox rows (processed_events) past the horizon. */
  inbox: number;
  /** Module notes of orders finished (completed or cancelled) before the horizon. */
  notes: number;
}

/**
 * Keeps the tables that grow with every event bounded, without touching what
 * an order is: its timeline (order_events, every event it ever had, shown as
 * Order.events), its rows and the modules' rows all stay.
 *
 * - An inbox row only has to outlive the chance of its event coming again:
 *   a redelivery (as long as the stream holds the event) or an admin's
 *   republish (refused past the horizon). Past the horizon it goes.
 * - A module note is what a module heard before it had a row; it matters
 *   while events of the order may still come. Notes of orders that finished
 *   (completed or cancelled) before the horizon go.
 *
 * Each statement deletes at most `batchSize` rows and commits on its own.
 */
export class RetentionSweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(private readonly options: RetentionOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running || this.stopped) return;
      this.running = this.sweep()
        .catch((error) => this.options.logger.warn({ err: String(error) }, "retention sweep failed"))
        .finally(() => {
          this.running = undefined;
        });
    }, this.options.intervalMs ?? 3_600_000);
  }

  /** One pass: deletes, batch by batch, what is past the horizon. */
  async sweep(now = new Date()): Promise<Swept> {
    const horizon = new Date(now.getTime() - this.options.inboxRetentionMs).toISOString();
    const batch = this.options.batchSize ?? 5_000;
    const inbox = await this.inBatches(
      sql`delete from processed_events where ctid = any(array(
            select ctid from processed_events where processed_at < ${horizon}::timestamptz limit ${batch}))`,
    );
    const notes = await this.inBatches(
      sql`delete from module_notes where ctid = any(array(
            select n.ctid from module_notes n join sales_orders o on o.id = n.order_id
             where n.noted_at < ${horizon}::timestamptz
               and o.status in ('completed', 'cancelled') and o.updated_at < ${horizon}::timestamptz
             limit ${batch}))`,
    );
    if (inbox + notes > 0)
      this.options.logger.info({ inbox, notes, horizon }, "retention sweep deleted rows past the horizon");
    return { inbox, notes };
  }

  private async inBatches(statement: ReturnType<typeof sql>): Promise<number> {
    const batch = this.options.batchSize ?? 5_000;
    let deleted = 0;
    while (!this.stopped) {
      const [row] = await query<{ n: number }>(
        this.options.db,
        sql`with gone as (${statement} returning 1) select count(*)::int as n from gone`,
      );
      const n = row?.n ?? 0;
      deleted += n;
      if (n < batch) break;
    }
    return deleted;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
