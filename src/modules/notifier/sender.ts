/**
 * The sender: claims due `pending` notifications one at a time (a short
 * transaction with FOR UPDATE SKIP LOCKED that stamps a claim on the row),
 * sends each outside any transaction, then marks it `sent`. A failed send is
 * tried again later with exponential back-off; it never holds up other
 * emails or the bus. Any number of senders may run against one database.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { and, asc, eq, isNull, lte, or, sql } from "drizzle-orm";
import type { Database } from "../../db/database.ts";
import { query } from "../../db/database.ts";
import type { Logger } from "../../log.ts";
import { notifierChannel } from "./listener.ts";
import type { Mailer, OutgoingEmail } from "./mailer.ts";
import { type NotificationRow, notifications } from "./table.ts";

export interface SenderOptions {
  database: Pick<Database, "db" | "listen">;
  logger: Logger;
  mailer: Mailer;
  compose(row: NotificationRow): Promise<OutgoingEmail>;
  /** Wait after the first failed try; doubles with each further one. Default 1 s. */
  retryMs?: number;
  /** Longest wait between tries. Default 10 min. */
  maxRetryMs?: number;
  /** Longest idle wait between looks for due rows (NOTIFY wakes the sender at once). Default 1 s. */
  pollMs?: number;
  /**
   * How long a claim keeps other senders off a row. A sender that dies
   * mid-send leaves its claim; the row is taken over once it expires. Far
   * longer than one SMTP conversation may last (the mailer's timeouts). Default 2 min.
   */
  claimMs?: number;
  /** Emails sent at once. Default 2. */
  concurrency?: number;
}

export interface Sender {
  start(): Promise<void>;
  /** Takes no new row, finishes the emails in flight (sent and marked), then resolves. */
  stop(): Promise<void>;
}

const interval = (ms: number) => sql`make_interval(secs => ${ms / 1000})`;

/**
 * The customer reads "it arrived" after "thanks for your order": an order's
 * completion email waits until its confirmation email is sent.
 */
const inOrder = sql`(${notifications.kind} <> 'completed' or exists (
  select 1 from notifications confirmation
  where confirmation.order_id = ${notifications.orderId} and confirmation.kind = 'confirmed' and confirmation.status = 'sent'))`;

export function createSender(options: SenderOptions): Sender {
  const { database, logger, mailer } = options;
  const db = database.db;
  const retryMs = options.retryMs ?? 1_000;
  const maxRetryMs = options.maxRetryMs ?? 600_000;
  const pollMs = options.pollMs ?? 1_000;
  const claimMs = options.claimMs ?? 120_000;
  const concurrency = options.concurrency ?? 2;
  const me = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  let stopping = false;
  let started = false;
  let workers: Promise<void>[] = [];
  let unlisten: (() => Promise<void>) | undefined;
  /** Bumped by every wake-up, so one that comes while a worker is busy is not lost. */
  let wakes = 0;
  const sleepers = new Set<() => void>();
  const wake = () => {
    wakes++;
    for (const resolve of sleepers) resolve();
    sleepers.clear();
  };
  const sleep = (ms: number, seen: number) =>
    new Promise<void>((resolve) => {
      if (stopping || wakes !== seen) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      }
      sleepers.add(done);
    });

  async function claim(): Promise<NotificationRow | undefined> {
    return db.transaction(async (tx) => {
      const n = notifications;
      const [due] = await tx
        .select({ orderId: n.orderId, kind: n.kind })
        .from(n)
        .where(
          and(
            eq(n.status, "pending"),
            lte(n.nextAttemptAt, sql`now()`),
            or(isNull(n.claimedUntil), lte(n.claimedUntil, sql`now()`)),
            inOrder,
          ),
        )
        .orderBy(asc(n.nextAttemptAt))
        .limit(1)
        .for("update", { skipLocked: true });
      if (!due) return undefined;
      const [claimed] = await tx
        .update(n)
        .set({
          claimedBy: me,
          claimedUntil: sql`now() + ${interval(claimMs)}`,
          attempts: sql`${n.attempts} + 1`,
        })
        .where(and(eq(n.orderId, due.orderId), eq(n.kind, due.kind)))
        .returning();
      return claimed;
    });
  }

  /** Milliseconds until the next row is due (or its claim expires), at most pollMs. */
  async function untilNextDue(): Promise<number> {
    const [next] = await query<{ ms: number | string | null }>(
      db,
      sql`select extract(epoch from min(greatest(next_attempt_at, coalesce(claimed_until, next_attempt_at))) - now()) * 1000 as ms
          from notifications where status = 'pending' and ${inOrder}`,
    );
    const ms = next?.ms === null || next?.ms === undefined ? pollMs : Number(next.ms);
    // A few milliseconds at least: a due row that another sender is claiming right now is not ours to spin on.
    return Math.min(pollMs, Math.max(5, Math.ceil(ms)));
  }

  async function deliver(row: NotificationRow): Promise<void> {
    const log = { orderId: row.orderId, kind: row.kind, messageId: row.messageId, attempt: row.attempts };
    const n = notifications;
    const key = and(eq(n.orderId, row.orderId), eq(n.kind, row.kind));
    try {
      await mailer.send(await options.compose(row));
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const backoff = Math.min(maxRetryMs, retryMs * 2 ** Math.max(0, row.attempts - 1));
      logger.warn({ ...log, err: message, retryInMs: backoff }, "email not sent, will retry");
      await db
        .update(n)
        .set({
          lastError: message.slice(0, 2000),
          nextAttemptAt: sql`now() + ${interval(backoff)}`,
          claimedBy: null,
          claimedUntil: null,
        })
        .where(and(key, eq(n.claimedBy, me)))
        .catch((dbError: unknown) =>
          // The claim runs out by itself; the row is tried again then.
          logger.error({ ...log, err: String(dbError) }, "cannot record the failed try"),
        );
      return;
    }
    // Accepted by the server. Until this commits, a crash re-sends it (same Message-ID): the one window no mail server lets us close.
    for (let attempt = 1; ; attempt++) {
      try {
        await db
          .update(n)
          .set({ status: "sent", sentAt: new Date(), lastError: null, claimedBy: null, claimedUntil: null })
          .where(and(key, eq(n.status, "pending")));
        logger.info({ ...log, mailer: mailer.kind }, "email sent");
        // Its completion email may go now: tell the other senders too.
        if (row.kind === "confirmed")
          await db.execute(sql`select pg_notify(${notifierChannel}, '')`).catch(() => {});
        return;
      } catch (dbError) {
        if (attempt >= 5) {
          logger.error(
            { ...log, err: String(dbError) },
            "email sent but not marked; it is sent again, with the same Message-ID, when the claim expires",
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  async function work(): Promise<void> {
    while (!stopping) {
      const seen = wakes;
      let row: NotificationRow | undefined;
      try {
        row = await claim();
        if (!row) {
          await sleep(await untilNextDue(), seen);
          continue;
        }
      } catch (error) {
        logger.error({ err: String(error) }, "notifier: cannot read notifications, will retry");
        await sleep(pollMs, seen);
        continue;
      }
      await deliver(row);
    }
  }

  return {
    async start() {
      if (started) return;
      started = true;
      unlisten = await database.listen(notifierChannel, wake);
      workers = Array.from({ length: concurrency }, () => work());
    },
    async stop() {
      stopping = true;
      wake();
      await Promise.all(workers);
      await unlisten?.();
      unlisten = undefined;
      mailer.close();
    },
  };
}
