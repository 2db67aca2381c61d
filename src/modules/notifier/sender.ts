/**
 * The sender: claims due `pending` notifications in batches, sends each
 * outside any transaction, and marks the sent ones `sent` in batches. A
 * failed send is tried again later with exponential back-off; it never holds
 * up other emails or the bus. Any number of senders may run against one
 * database.
 *
 * A claim is a session-level advisory lock per row, held on a connection of
 * the sender's own (the Que job queue's approach): it lasts as long as that
 * connection, so the rows of a sender that dies mid-send are free the moment
 * PostgreSQL sees its connection close, and another sender takes them over
 * within a poll; a sender that is slow or paused keeps them. The claim is
 * also stamped on the row (claimed_by): marking a row sent checks it, so a
 * sender that lost its connection, and with it its locks, marks nothing
 * another sender has taken over.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import DataLoader from "dataloader";
import { and, asc, eq, inArray, lte, type SQL, sql } from "drizzle-orm";
import type { Database, Db, Session } from "../../db/database.ts";
import { query } from "../../db/database.ts";
import { wholeRow } from "../../db/rows.ts";
import { faultPoint } from "../../faults.ts";
import type { Logger } from "../../log.ts";
import { salesOrders } from "../../statemachine/tables.ts";
import { notifierChannel } from "./listener.ts";
import type { Mailer, OutgoingEmail } from "./mailer.ts";
import { type NotificationKind, type NotificationRow, notifications } from "./table.ts";

export interface SenderOptions {
  database: Pick<Database, "db" | "listen" | "session">;
  logger: Logger;
  mailer: Mailer;
  compose(row: NotificationRow): Promise<OutgoingEmail>;
  /** Wait after the first failed try; doubles with each further one. Default 1 s. */
  retryMs?: number;
  /** Longest wait between tries. Default 10 min. */
  maxRetryMs?: number;
  /** Longest idle wait between looks for due rows (NOTIFY wakes the sender at once). Default 1 s. */
  pollMs?: number;
  /** Emails sent at once; a claim round takes up to as many due rows as are free. Default 8. */
  concurrency?: number;
  /**
   * How long marking sent emails is retried while the database does not
   * answer, holding their claims; past it they are let go and sent again
   * (same Message-ID). Far longer than a database blip. Default 60 s.
   */
  markRetryMs?: number;
}

export interface Sender {
  start(): Promise<void>;
  /** Takes no new row, finishes the emails in flight (sent and marked), then resolves. */
  stop(): Promise<void>;
}

/** The first key of every claim's advisory lock (the second is the row's hash): any constant no one else uses. */
const claimLockClass = 7_301_002;

/**
 * Rows being sent from this process, per database. Advisory locks are
 * re-entrant within a session, so a sender would lock its own row again;
 * and PGlite's one session is shared by every sender of the process.
 */
const inFlightByDatabase = new WeakMap<Db, Set<string>>();

type RowKey = Pick<NotificationRow, "orderId" | "kind">;
const keyOf = (row: RowKey) => `${row.orderId}.${row.kind}`;

/** A claimed row and the session whose lock holds it. */
interface Claim {
  row: NotificationRow;
  session: Session;
}

/** A notification's whole row, as the claim returns it (see wholeRow). */
const notificationRow = wholeRow(notifications);

/** Candidates read beyond the free slots, for rows that other senders hold. */
const spareCandidates = 16;

const interval = (ms: number) => sql`make_interval(secs => ${ms / 1000})`;

/**
 * The customer reads "it arrived" after "thanks for your order": an order's
 * completion email waits until its confirmation email is sent.
 */
const inOrder = sql`(${notifications.kind} <> 'completed' or exists (
  select 1 from notifications confirmation
  where confirmation.order_id = ${notifications.orderId} and confirmation.kind = 'confirmed' and confirmation.status = 'sent'))`;

function rowsIn(rows: RowKey[]): SQL {
  const keys = rows.map((r) => sql`(${r.orderId}::uuid, ${r.kind}::text)`);
  return sql`(${notifications.orderId}, ${notifications.kind}) in (${sql.join(keys, sql`, `)})`;
}

function lockKeys(rows: RowKey[]): SQL {
  return sql`(values ${sql.join(
    rows.map((r) => sql`(${r.orderId}::text, ${r.kind}::text)`),
    sql`, `,
  )}) as claim(order_id, kind)`;
}
const lockOf = sql`${sql.raw(String(claimLockClass))}, hashtext(claim.order_id || '.' || claim.kind)`;

export function createSender(options: SenderOptions): Sender {
  const { database, logger, mailer } = options;
  const db = database.db;
  const retryMs = options.retryMs ?? 1_000;
  const maxRetryMs = options.maxRetryMs ?? 600_000;
  const pollMs = options.pollMs ?? 1_000;
  const concurrency = options.concurrency ?? 8;
  const markRetryMs = options.markRetryMs ?? 60_000;
  const me = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const held = inFlightByDatabase.get(db) ?? new Set<string>();
  inFlightByDatabase.set(db, held);

  let stopping = false;
  let started = false;
  let loop: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let session: Session | undefined;
  const sending = new Set<Promise<void>>();
  const toMark: Claim[] = [];
  let marking: Promise<void> | undefined;

  /** Bumped by every wake-up, so one that comes while the loop is busy is not lost. */
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

  async function currentSession(): Promise<Session> {
    if (session && !session.alive) {
      // Its locks went with it; the rows still in flight are checked by their stamp when marked.
      logger.warn({ sender: me }, "notifier: lost the connection holding its claims, opening another");
      await session.close();
      session = undefined;
    }
    session ??= await database.session();
    return session;
  }

  async function tryLock(on: Session, rows: RowKey[]): Promise<RowKey[]> {
    // No LIMIT beside the lock calls: every row it locks is one it returns.
    const locked = await query<{ order_id: string; kind: NotificationKind }>(
      on.db,
      sql`select claim.order_id, claim.kind from ${lockKeys(rows)} where pg_try_advisory_lock(${lockOf})`,
    );
    return locked.map((r) => ({ orderId: r.order_id, kind: r.kind }));
  }

  /** Lets go of rows: unlocks them (nothing to do if their session died), then forgets them. */
  async function release(on: Session, rows: RowKey[]): Promise<void> {
    if (rows.length === 0) return;
    if (on.alive)
      await query(on.db, sql`select pg_advisory_unlock(${lockOf}) from ${lockKeys(rows)}`).catch(
        (error: unknown) => logger.warn({ err: String(error) }, "notifier: cannot unlock claims"),
      );
    for (const row of rows) held.delete(keyOf(row));
  }

  /**
   * Up to `limit` due rows, each locked, then re-checked under its lock and
   * stamped: candidates first, read without locks, since a lock call beside a
   * LIMIT may lock rows the query never returns. `contended` says some due
   * rows are held by other senders.
   */
  async function claim(limit: number): Promise<{ claims: Claim[]; contended: boolean }> {
    const n = notifications;
    const candidates = await db
      .select({ orderId: n.orderId, kind: n.kind })
      .from(n)
      .where(and(eq(n.status, "pending"), lte(n.nextAttemptAt, sql`now()`), inOrder))
      // Rows no one has claimed first: one with a stamp is in another sender's hands, or was, if it died.
      .orderBy(sql`${n.claimedBy} is not null`, asc(n.nextAttemptAt))
      .limit(limit + held.size + spareCandidates);
    const free = candidates.filter((c) => !held.has(keyOf(c)));
    if (free.length === 0) return { claims: [], contended: false };
    const on = await currentSession();
    const locked = await tryLock(on, free);
    for (const row of locked) held.add(keyOf(row));
    await release(on, locked.slice(limit));
    const mine = locked.slice(0, limit);
    const contended = locked.length < free.length;
    if (mine.length === 0) return { claims: [], contended };
    try {
      // Under the lock, as things are now: another sender may have sent a row since it was read,
      // or tried and rescheduled it, or its order been cancelled.
      const orderCancelled = sql`exists (select 1 from ${salesOrders} where ${salesOrders.id} = ${n.orderId} and ${salesOrders.status} = 'cancelled')`;
      const claimed = await notificationRow.all(
        db,
        sql`update ${n} set claimed_by = ${me}, attempts = ${n.attempts} + 1
          where ${rowsIn(mine)} and ${n.status} = 'pending' and ${n.nextAttemptAt} <= now() and not ${orderCancelled}
          returning ${notificationRow.columns}`,
      );
      if (claimed.length < mine.length) {
        // The rare case: some were not claimed. Those of cancelled orders go no further.
        await db
          .update(n)
          .set({ status: "cancelled" })
          .where(and(rowsIn(mine), eq(n.status, "pending"), orderCancelled));
      }
      const claimedKeys = new Set(claimed.map(keyOf));
      await release(
        on,
        mine.filter((row) => !claimedKeys.has(keyOf(row))),
      );
      return { claims: claimed.map((row) => ({ row, session: on })), contended };
    } catch (error) {
      await release(on, mine);
      throw error;
    }
  }

  /** Milliseconds until the next row is due, at most pollMs. */
  async function untilNextDue(): Promise<number> {
    const [next] = await query<{ ms: number | string | null }>(
      db,
      sql`select extract(epoch from min(next_attempt_at) - now()) * 1000 as ms
          from notifications where status = 'pending' and claimed_by is distinct from ${me} and ${inOrder}`,
    );
    const ms = next?.ms === null || next?.ms === undefined ? pollMs : Number(next.ms);
    // A few milliseconds at least: a due row that another sender is claiming right now is not ours to spin on.
    return Math.min(pollMs, Math.max(5, Math.ceil(ms)));
  }

  /** Looks that come at once (a batch's emails composed together) share one statement; nothing is cached. */
  const cancelledOrders = new DataLoader<string, boolean>(
    async (orderIds) => {
      const cancelled = await query<{ id: string }>(
        db,
        sql`select ${salesOrders.id} as id from ${salesOrders}
          where ${salesOrders.id} = any(${`{${orderIds.join(",")}}`}::uuid[]) and ${salesOrders.status} = 'cancelled'`,
      );
      const ids = new Set(cancelled.map((row) => row.id));
      return orderIds.map((id) => ids.has(id));
    },
    { cache: false },
  );
  const orderCancelled = (orderId: string) => cancelledOrders.load(orderId);

  async function deliver({ row, session: on }: Claim): Promise<void> {
    const log = { orderId: row.orderId, kind: row.kind, messageId: row.messageId, attempt: row.attempts };
    const n = notifications;
    const mine = and(rowsIn([row]), eq(n.status, "pending"), eq(n.claimedBy, me));
    try {
      const email = await options.compose(row);
      // The last look before the email leaves: a cancel since the claim stops it here. A completed
      // order is past cancelling, so its email needs no look.
      if (row.kind !== "completed" && (await orderCancelled(row.orderId))) {
        await db.update(n).set({ status: "cancelled" }).where(mine);
        logger.info(log, "order cancelled, email not sent");
        await release(on, [row]);
        return;
      }
      const sending = mailer.send(email);
      // The SMTP conversation has begun and nothing is accepted yet (test/faults).
      faultPoint("notifier:mid-send");
      await sending;
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
        })
        .where(mine)
        .catch((dbError: unknown) =>
          // Tried again as soon as the claim is let go.
          logger.error({ ...log, err: String(dbError) }, "cannot record the failed try"),
        );
      await release(on, [row]);
      return;
    }
    toMark.push({ row, session: on });
    markSoon();
  }

  function markSoon(): void {
    marking ??= (async () => {
      while (toMark.length > 0) await markSent(toMark.splice(0));
    })().finally(() => {
      marking = undefined;
      if (toMark.length > 0) markSoon();
    });
  }

  /**
   * Accepted by the server: marked sent, if this sender still holds the
   * claim (a row the listener cancelled meanwhile was sent all the same).
   * Until this commits, the claim stays held and a crash sends it again (same
   * Message-ID): the one window no mail server lets us close.
   */
  async function markSent(batch: Claim[]): Promise<void> {
    const n = notifications;
    const rows = batch.map((c) => c.row);
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const marked = await db
          .update(n)
          .set({ status: "sent", sentAt: new Date(), lastError: null })
          .where(and(rowsIn(rows), inArray(n.status, ["pending", "cancelled"]), eq(n.claimedBy, me)))
          .returning({ orderId: n.orderId, kind: n.kind });
        const markedKeys = new Set(marked.map(keyOf));
        for (const row of rows) {
          const log = { orderId: row.orderId, kind: row.kind, messageId: row.messageId, mailer: mailer.kind };
          if (markedKeys.has(keyOf(row))) logger.info(log, "email sent");
          else logger.warn(log, "email sent, but another sender had taken it over: it may go twice");
        }
        // Their completion emails may go now (the table's trigger tells the other senders at commit).
        if (marked.some((row) => row.kind === "confirmed")) wake();
        break;
      } catch (dbError) {
        if (Date.now() - since >= markRetryMs) {
          logger.error(
            { err: String(dbError), messageIds: rows.map((r) => r.messageId) },
            "emails sent but not marked; they are sent again, with the same Message-ID, once their claims are let go",
          );
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 100 * 2 ** attempt)));
      }
    }
    for (const on of new Set(batch.map((c) => c.session)))
      await release(
        on,
        batch.filter((c) => c.session === on).map((c) => c.row),
      );
  }

  function send(claimed: Claim): void {
    const task = deliver(claimed)
      .catch((error: unknown) => logger.error({ err: String(error) }, "notifier: send failed"))
      .finally(() => {
        sending.delete(task);
        wake();
      });
    sending.add(task);
  }

  async function run(): Promise<void> {
    while (!stopping) {
      const seen = wakes;
      const free = concurrency - sending.size;
      // A claim costs the same few round trips for one row as for many: claiming for each
      // slot as it frees would make the claims the bottleneck, so wait for half the slots.
      if (free <= 0 || (sending.size > 0 && free < Math.ceil(concurrency / 2))) {
        await sleep(pollMs, seen);
        continue;
      }
      try {
        const { claims, contended } = await claim(free);
        for (const claimed of claims) send(claimed);
        if (claims.length === free) continue;
        // Rows held by another sender: look again after a poll (its end wakes us when it sends a confirmation).
        await sleep(contended ? pollMs : await untilNextDue(), seen);
      } catch (error) {
        logger.error({ err: String(error) }, "notifier: cannot read notifications, will retry");
        await sleep(pollMs, seen);
      }
    }
  }

  return {
    async start() {
      if (started) return;
      started = true;
      unlisten = await database.listen(notifierChannel, wake);
      loop = run();
    },
    async stop() {
      stopping = true;
      wake();
      await loop;
      while (sending.size > 0) await Promise.all([...sending]);
      while (marking) await marking;
      await session?.close();
      session = undefined;
      await unlisten?.();
      unlisten = undefined;
      await mailer.close();
    },
  };
}
