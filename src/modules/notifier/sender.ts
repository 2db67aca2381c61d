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
 *
 * One statement per step and batch, all on that connection: the claim
 * (locks, stamps, and the orders and lines the emails show), and the mark
 * (or the failed try) that lets go of the locks once its update is done.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { type SQL, sql } from "drizzle-orm";
import type { Database, Db, Session } from "../../db/database.ts";
import { query } from "../../db/database.ts";
import { textArray, wholeRow } from "../../db/rows.ts";
import { faultPoint } from "../../faults.ts";
import type { Logger } from "../../log.ts";
import { salesOrders } from "../../statemachine/tables.ts";
import { type EmailOrder, emailOrder } from "./compose.ts";
import { notifierChannel } from "./listener.ts";
import type { Mailer, OutgoingEmail } from "./mailer.ts";
import { type NotificationKind, type NotificationRow, notifications } from "./table.ts";

export interface SenderOptions {
  database: Pick<Database, "db" | "listen" | "session">;
  logger: Logger;
  mailer: Mailer;
  /** The email of a claimed row, from its order as the claim read it (undefined: there is no such order). */
  compose(row: NotificationRow, order: EmailOrder | undefined): Promise<OutgoingEmail>;
  /** Wait after the first failed try; doubles with each further one. Default 1 s. */
  retryMs?: number;
  /** Longest wait between tries. Default 10 min. */
  maxRetryMs?: number;
  /** Longest idle wait between looks for due rows (NOTIFY wakes the sender at once). Default 1 s. */
  pollMs?: number;
  /** Emails sent at once; a claim round takes up to as many due rows as are free. Default 32. */
  concurrency?: number;
  /**
   * While the sender keeps up (its last claim took every due row), it claims
   * at most once in this time, so that the rows coming due meanwhile go in one
   * claim (one commit), not one claim per wake-up. With a backlog it claims as
   * slots free. Default 200 ms.
   */
  claimEveryMs?: number;
  /**
   * How long marking sent emails is retried while the database does not
   * answer, holding their claims; past it they are let go and sent again
   * (same Message-ID). Far longer than a database blip. Default 60 s.
   */
  markRetryMs?: number;
  /**
   * How long an email accepted by the server waits to be marked sent
   * together with the others accepted meanwhile, so that the emails of that
   * time cost one commit, not one each. It widens the window in which a crash
   * sends an email twice (same Message-ID) by as much. Default 100 ms.
   */
  markWithinMs?: number;
}

export interface Sender {
  start(): Promise<void>;
  /** Takes no new row, finishes the emails in flight (sent and marked), then resolves. */
  stop(): Promise<void>;
}

/** The first key of every claim's advisory lock (the second is the hash of the row's key): any constant no one else uses. */
const claimLockClass = 7_301_002;

/**
 * What the senders of one process share per database. Advisory locks are
 * re-entrant within a session, so a sender would lock its own row again, and
 * PGlite's one session is shared by every sender of the process: `held` are
 * the rows being sent from this process, and claims take turns, so that one
 * claim's rows are held before the next claim looks.
 */
interface Shared {
  held: Set<string>;
  claiming: Promise<unknown>;
}
const sharedByDatabase = new WeakMap<Db, Shared>();

type RowKey = Pick<NotificationRow, "orderId" | "kind">;
/** A row's key, as SQL spells it too (`order_id::text || '.' || kind`): its lock is hashtext of it. */
const keyOf = (row: RowKey) => `${row.orderId}.${row.kind}`;
const sqlKey = (alias: string) => sql.raw(`${alias}.order_id::text || '.' || ${alias}.kind`);
const lockOf = (key: SQL) => sql`${sql.raw(String(claimLockClass))}, hashtext(${key})`;

/** A claimed row, the order its email shows, and the session whose lock holds it. */
interface Claim {
  row: NotificationRow;
  order: EmailOrder | undefined;
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
  const ids = textArray(rows.map((r) => r.orderId));
  const kinds = textArray(rows.map((r) => r.kind));
  return sql`(${notifications.orderId}, ${notifications.kind}) in (select * from unnest(${ids}::uuid[], ${kinds}::text[]))`;
}

/**
 * What one claim statement answers: a row per row it locked (the claimed row, or nulls for one it let go at
 * once), each with the round's summary; one row of nulls and the summary when it locked none.
 */
type ClaimAnswer = Record<string, unknown> & {
  candidates: number;
  next_due_ms: number | string | null;
  locked_order_id: string | null;
  order_id: string | null;
  email_order: EmailOrder | null;
};

export function createSender(options: SenderOptions): Sender {
  const { database, logger, mailer } = options;
  const db = database.db;
  const retryMs = options.retryMs ?? 1_000;
  const maxRetryMs = options.maxRetryMs ?? 600_000;
  const pollMs = options.pollMs ?? 1_000;
  const concurrency = options.concurrency ?? 32;
  const claimEveryMs = options.claimEveryMs ?? 200;
  const markRetryMs = options.markRetryMs ?? 60_000;
  const markWithinMs = options.markWithinMs ?? 100;
  const me = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const shared = sharedByDatabase.get(db) ?? { held: new Set<string>(), claiming: Promise.resolve() };
  sharedByDatabase.set(db, shared);
  const { held } = shared;

  let stopping = false;
  let started = false;
  let loop: Promise<void> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let session: Session | undefined;
  /** A session whose claim statement failed, so it may hold locks of rows it never heard of. */
  let strayLocksOn: Session | undefined;
  const sending = new Set<Promise<void>>();
  /** Emails the server accepted, waiting to be marked sent, with when it accepted each. */
  const toMark: (Claim & { acceptedAt: number })[] = [];
  /** The loop waits for free slots (due rows may be left), not for rows to come due. */
  let waitingForSlots = false;
  let marking: Promise<void> | undefined;

  /** Called when the sender stops: waits that need not run out. */
  const onStop = new Set<() => void>();
  /** When the last claim was sent, and whether it took every due row (the sender keeps up). */
  let lastClaimAt = Number.NEGATIVE_INFINITY;
  let keepingUp = true;

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

  const forget = (rows: RowKey[]) => {
    for (const row of rows) held.delete(keyOf(row));
  };

  /** Lets go of rows: unlocks them (nothing to do if their session died), then forgets them. */
  async function letGo(on: Session, rows: RowKey[]): Promise<void> {
    if (rows.length === 0) return;
    if (on.alive)
      await query(
        on.db,
        sql`select pg_advisory_unlock(${lockOf(sql`key`)}) from unnest(${textArray(rows.map(keyOf))}::text[]) as key`,
      ).catch((error: unknown) => logger.warn({ err: String(error) }, "notifier: cannot unlock claims"));
    forget(rows);
  }

  /**
   * Runs `update` (of claimed rows, `returning order_id, kind`) and lets go
   * of the rows' claims in the same statement, once the update is done (the
   * aggregate reads all of it before any unlock); their session dead, the
   * update alone, on any connection. The keys of the rows updated come back.
   * Should the statement fail, no lock was let go, and the rows are still held.
   */
  async function updateAndLetGo(on: Session, rows: RowKey[], update: SQL): Promise<Set<string>> {
    if (!on.alive) {
      const updated = await query<{ order_id: string; kind: NotificationKind }>(db, update);
      forget(rows);
      return new Set(updated.map((r) => keyOf({ orderId: r.order_id, kind: r.kind })));
    }
    const [answer] = await query<{ updated: string[] | null }>(
      on.db,
      sql`with done as (${update}),
        updated as (select array_agg(${sqlKey("done")}) as updated from done)
        select updated.updated, pg_advisory_unlock(${lockOf(sql`key`)}) as let_go
        from updated, unnest(${textArray(rows.map(keyOf))}::text[]) as key`,
    );
    forget(rows);
    return new Set(answer?.updated ?? []);
  }

  /**
   * A claim statement failed: it may have locked rows before failing, and a
   * session-level lock outlives its statement. Unlocks every claim lock the
   * session holds but for the rows this process is sending (claims take
   * turns, so none is being taken meanwhile).
   */
  async function letGoOfStrayLocks(on: Session): Promise<void> {
    if (on.alive)
      await query(
        on.db,
        sql`select pg_advisory_unlock(${sql.raw(String(claimLockClass))}, objid::int) from pg_locks
          where locktype = 'advisory' and pid = pg_backend_pid() and classid = ${sql.raw(String(claimLockClass))} and objsubid = 2
            and objid::int <> all(array(select hashtext(key) from unnest(${textArray([...held])}::text[]) as key))`,
      );
    if (strayLocksOn === on) strayLocksOn = undefined;
  }

  /**
   * Up to `limit` due rows, locked, stamped and read with the order their
   * email shows, in one statement: candidates first, read without locks (a
   * lock call beside a LIMIT may lock rows the query never returns; here the
   * LIMIT reads the candidates in turn and stops at the first `limit` locked).
   * Under the lock the UPDATE looks at each row as it is now (a row another
   * sender sent or rescheduled since the candidates were read is updated by
   * then, and PostgreSQL checks it again): a row no longer due goes no
   * further, nor one of a cancelled order, which is marked so. A row locked
   * but not claimed is let go at once, once the UPDATE is done. `more`: the
   * limit was reached, so due rows may be left; `contended`: some due rows are
   * held by other senders; `nextDueMs`: until the next pending row not due yet
   * is due.
   */
  async function claim(
    limit: number,
  ): Promise<{ claims: Claim[]; more: boolean; contended: boolean; nextDueMs: number | null }> {
    const on = await currentSession();
    if (strayLocksOn === on) await letGoOfStrayLocks(on);
    const n = notifications;
    const lock = lockOf(sqlKey("candidate"));
    // Rows no one has claimed first: one with a stamp is in another sender's hands, or was, if it died.
    let answer: ClaimAnswer[];
    try {
      answer = await query<ClaimAnswer>(
        on.db,
        sql`with candidate as materialized (
            select order_id, kind from ${n}
            where status = 'pending' and next_attempt_at <= now() and ${inOrder}
              and order_id::text || '.' || kind <> all(${textArray([...held])}::text[])
            order by claimed_by is not null, next_attempt_at
            limit ${limit + spareCandidates}
          ),
          locked as materialized (
            select order_id, kind from candidate where pg_try_advisory_lock(${lock}) limit ${limit}
          ),
          claimed as (
            update ${n} set claimed_by = ${me}, attempts = ${n}.attempts + 1
            from locked left join ${salesOrders} on ${salesOrders.id} = locked.order_id
            where (${n}.order_id, ${n}.kind) = (locked.order_id, locked.kind)
              and ${n}.status = 'pending' and ${n}.next_attempt_at <= now()
              and ${salesOrders.status} is distinct from 'cancelled'
            returning ${n}.*, ${emailOrder} as email_order
          ),
          dropped as (
            update ${n} set status = 'cancelled'
            from locked join ${salesOrders} on ${salesOrders.id} = locked.order_id
            where (${n}.order_id, ${n}.kind) = (locked.order_id, locked.kind)
              and ${n}.status = 'pending' and ${salesOrders.status} = 'cancelled'
          )
          select summary.*, mine.* from (
            select (select count(*)::int from candidate) as candidates,
              extract(epoch from (select min(next_attempt_at) from ${n}
                where status = 'pending' and next_attempt_at > now() and ${inOrder}) - now()) * 1000 as next_due_ms
          ) summary left join (
            select locked.order_id as locked_order_id, claimed.*,
              case when claimed.order_id is null then pg_advisory_unlock(${lockOf(sqlKey("locked"))}) end as let_go
            from locked left join claimed on (claimed.order_id, claimed.kind) = (locked.order_id, locked.kind)
          ) mine on true`,
      );
    } catch (error) {
      strayLocksOn = on;
      await letGoOfStrayLocks(on).catch((cleanup: unknown) =>
        logger.error(
          { err: String(cleanup) },
          "notifier: cannot let go of a failed claim's locks, will try again",
        ),
      );
      throw error;
    }
    const [summary] = answer;
    const locked = answer.filter((a) => a.locked_order_id !== null);
    const claims = locked
      .filter((a) => a.order_id !== null)
      .map((a) => ({ row: notificationRow.read(a), order: a.email_order ?? undefined, session: on }));
    for (const { row } of claims) held.add(keyOf(row));
    const more = locked.length === limit;
    return {
      claims,
      more,
      contended: !more && (summary?.candidates ?? 0) > locked.length,
      nextDueMs:
        summary?.next_due_ms === null || summary?.next_due_ms === undefined
          ? null
          : Number(summary.next_due_ms),
    };
  }

  /** A claim round, in its turn (see Shared). */
  function claimInTurn(limit: number): ReturnType<typeof claim> {
    const round = shared.claiming.then(() => claim(limit));
    shared.claiming = round.catch(() => {});
    return round;
  }

  async function deliver({ row, order, session: on }: Claim): Promise<void> {
    const log = { orderId: row.orderId, kind: row.kind, messageId: row.messageId, attempt: row.attempts };
    try {
      const email = await options.compose(row, order);
      const sending = mailer.send(email);
      // The SMTP conversation has begun and nothing is accepted yet (test/faults).
      faultPoint("notifier:mid-send");
      await sending;
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const backoff = Math.min(maxRetryMs, retryMs * 2 ** Math.max(0, row.attempts - 1));
      logger.warn({ ...log, err: message, retryInMs: backoff }, "email not sent, will retry");
      const n = notifications;
      await updateAndLetGo(
        on,
        [row],
        sql`update ${n} set last_error = ${message.slice(0, 2000)}, next_attempt_at = now() + ${interval(backoff)},
            claimed_by = null
          where ${rowsIn([row])} and ${n.status} = 'pending' and ${n.claimedBy} = ${me}
          returning order_id, kind`,
      ).catch(async (dbError: unknown) => {
        // Tried again as soon as the claim is let go.
        logger.error({ ...log, err: String(dbError) }, "cannot record the failed try");
        await letGo(on, [row]);
      });
      // The loop's next look may be later than this retry.
      wake();
      return;
    }
    toMark.push({ row, order, session: on, acceptedAt: Date.now() });
    markSoon();
  }

  function markSoon(): void {
    marking ??= (async () => {
      // The oldest waits markWithinMs (less, if the sender stops) for the emails accepted after it, those
      // accepted while the last mark ran included: one mark per markWithinMs at most.
      const until = (toMark[0]?.acceptedAt ?? Date.now()) + markWithinMs;
      while (!stopping && Date.now() < until) await anySent(until);
      await markSent(toMark.splice(0));
    })().finally(() => {
      marking = undefined;
      if (toMark.length > 0) markSoon();
    });
  }

  /** Until an email in flight is done (sent or failed), the sender stops, or `until`. */
  async function anySent(until: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let stopped: (() => void) | undefined;
    await Promise.race([
      ...sending,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, until - Date.now()));
        stopped = resolve;
        onStop.add(resolve);
      }),
    ]);
    clearTimeout(timer);
    if (stopped) onStop.delete(stopped);
  }

  /**
   * Accepted by the server: marked sent, if this sender still holds the
   * claim (a row the listener cancelled meanwhile was sent all the same), and
   * let go in the same statement. Until this commits, the claim stays held and
   * a crash sends it again (same Message-ID): the one window no mail server
   * lets us close.
   */
  async function markSent(batch: Claim[]): Promise<void> {
    for (const on of new Set(batch.map((c) => c.session)))
      await markSentOn(
        on,
        batch.filter((c) => c.session === on).map((c) => c.row),
      );
  }

  async function markSentOn(on: Session, rows: NotificationRow[]): Promise<void> {
    const n = notifications;
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const marked = await updateAndLetGo(
          on,
          rows,
          sql`update ${n} set status = 'sent', sent_at = now(), last_error = null
            where ${rowsIn(rows)} and ${n.status} in ('pending', 'cancelled') and ${n.claimedBy} = ${me}
            returning order_id, kind`,
        );
        for (const row of rows) {
          const log = { orderId: row.orderId, kind: row.kind, messageId: row.messageId, mailer: mailer.kind };
          if (marked.has(keyOf(row))) logger.info(log, "email sent");
          else logger.warn(log, "email sent, but another sender had taken it over: it may go twice");
        }
        // Their completion emails may go now: the table's trigger tells every sender at commit, this one too.
        return;
      } catch (dbError) {
        if (Date.now() - since >= markRetryMs) {
          logger.error(
            { err: String(dbError), messageIds: rows.map((r) => r.messageId) },
            "emails sent but not marked; they are sent again, with the same Message-ID, once their claims are let go",
          );
          await letGo(on, rows);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 100 * 2 ** attempt)));
      }
    }
  }

  function send(claimed: Claim): void {
    const task = deliver(claimed)
      .catch((error: unknown) => logger.error({ err: String(error) }, "notifier: send failed"))
      .finally(() => {
        sending.delete(task);
        // A slot the loop waits for. Else it has claimed all it could; what comes due wakes it.
        if (waitingForSlots) wake();
      });
    sending.add(task);
  }

  /** `ms`, or until the sender stops; wake-ups do not end it. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      onStop.add(done);
      function done() {
        clearTimeout(timer);
        onStop.delete(done);
        resolve();
      }
    });

  /** How long to wait for the next row not due yet, at most pollMs. */
  const untilDue = (ms: number | null) =>
    // A few milliseconds at least: a row due right now is not ours to spin on.
    ms === null ? pollMs : Math.min(pollMs, Math.max(5, Math.ceil(ms)));

  async function run(): Promise<void> {
    while (!stopping) {
      let seen = wakes;
      let free = concurrency - sending.size;
      // A claim costs one round trip for one row as for many: claiming for each slot as
      // it frees would make the claims the bottleneck, so wait for half the slots.
      waitingForSlots = free <= 0 || (sending.size > 0 && free < Math.ceil(concurrency / 2));
      if (waitingForSlots) {
        await sleep(pollMs, seen);
        continue;
      }
      // Keeping up: the rows that come due until claimEveryMs after the last claim go in the next one.
      const pace = lastClaimAt + claimEveryMs - Date.now();
      if (keepingUp && pace > 0) {
        await pause(pace);
        if (stopping) break;
        // The claim sees every row whose wake-up came before it; and sends may have ended meanwhile.
        seen = wakes;
        free = concurrency - sending.size;
      }
      try {
        lastClaimAt = Date.now();
        const { claims, more, contended, nextDueMs } = await claimInTurn(free);
        for (const claimed of claims) send(claimed);
        // Due rows may be left: claim again, or wait for the slots to take them.
        waitingForSlots = claims.length === free || more;
        keepingUp = !waitingForSlots;
        if (waitingForSlots) continue;
        // Rows held by another sender: look again after a poll (its end wakes us when it sends a confirmation).
        // A row that turns pending, or a confirmation sent, wakes us (the table's trigger); else the next retry.
        await sleep(contended ? pollMs : untilDue(nextDueMs), seen);
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
      for (const resolve of [...onStop]) resolve();
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
