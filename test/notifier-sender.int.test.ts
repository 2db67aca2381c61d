import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import { emailComposer } from "../src/modules/notifier/compose.ts";
import type { Mailer, OutgoingEmail } from "../src/modules/notifier/mailer.ts";
import { createSender, type Sender, type SenderOptions } from "../src/modules/notifier/sender.ts";
import type { NotificationKind, NotificationStatus } from "../src/modules/notifier/table.ts";
import { loadTemplates } from "../src/modules/notifier/templates.ts";
import { createTestDatabase } from "./support/database.ts";
import { eventually } from "./support/wait.ts";

const mailFrom = "orders@shop.test";
const invoice = {
  number: "INV-000001",
  amount: 1299,
  currency: "EUR",
  paymentReference: "psp-1",
  issuedAt: "2026-01-01T00:00:00.000Z",
};

/** A mailer that keeps what it is handed; `hold` keeps each send waiting until it says so. */
function recordingMailer(hold?: (sent: OutgoingEmail[]) => Promise<void>) {
  const sent: OutgoingEmail[] = [];
  const mailer: Mailer = {
    kind: "eml",
    async send(email) {
      sent.push(email);
      await hold?.(sent);
    },
    async close() {},
  };
  return { sent, mailer };
}

/**
 * The sender against real PostgreSQL, its statements counted at the pg
 * client (every client but the test's own): a batch of emails costs the same
 * few statements whatever its size, and still behaves as one email at a time
 * would.
 */
describe("the notifier's sender", () => {
  let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  let checker: pg.Client;
  const statements: string[] = [];
  const query = pg.Client.prototype.query;
  const senders: Sender[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    const dataDir = mkdtempSync(join(tmpdir(), "notifier-sender-"));
    database = await openDatabase({ url: testDb.url, dataDir });
    checker = new pg.Client({ connectionString: testDb.url });
    await checker.connect();
    (pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
      const first = args[0];
      const text = typeof first === "string" ? first : (first as { text?: string } | undefined)?.text;
      if (this !== checker && text !== undefined && !/^\s*(un)?listen\b/i.test(text)) statements.push(text);
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    };
  });
  afterAll(async () => {
    pg.Client.prototype.query = query;
    for (const sender of senders) await sender.stop();
    await checker?.end();
    await database?.close();
    await testDb?.drop();
  });

  function startSender(options: Partial<SenderOptions> & Pick<SenderOptions, "mailer">): Promise<void> {
    const sender = createSender({
      database,
      logger: createLogger("silent"),
      compose: emailComposer(loadTemplates(), mailFrom),
      concurrency: 16,
      pollMs: 60_000,
      retryMs: 60_000,
      ...options,
    });
    senders.push(sender);
    return sender.start();
  }
  async function stopSenders(): Promise<void> {
    for (const sender of senders.splice(0)) await sender.stop();
  }

  /** An order with `lines` lines of EBOOK-1, in the given status. */
  async function order(lines = 1, status = "fulfilling"): Promise<string> {
    const id = randomUUID();
    await checker.query(
      `insert into sales_orders (id, status, customer_id, contact_email, total_amount, currency, required_modules,
         involved_modules, idempotency_key, request_hash, placed_event_id)
       values ($1, $2, 'c-1', 'ada@example.com', $3, 'EUR', '{finance}', '{finance}', $4, 'h', $1)`,
      [id, status, 1299 * lines, id],
    );
    for (let position = 0; position < lines; position++)
      await checker.query(
        `insert into order_lines (order_id, position, sku, name, kind, quantity, unit_amount, currency)
         values ($1, $2, 'EBOOK-1', 'The Order Machine (e-book)', 'digital', 1, 1299, 'EUR')`,
        [id, position],
      );
    return id;
  }
  type Row = { orderId: string; kind: NotificationKind; status?: NotificationStatus };
  /** Notification rows, written in one transaction (one wake-up for the senders). */
  async function notify(rows: Row[]): Promise<void> {
    await checker.query(
      `insert into notifications (order_id, kind, status, heard, message_id, recipient, invoice)
       select r.order_id, r.kind, r.status, '{}', '<' || r.order_id || '.' || r.kind || '@shop.test>', 'ada@example.com',
         case when r.kind = 'confirmed' then $4::jsonb end
       from unnest($1::uuid[], $2::text[], $3::text[]) as r(order_id, kind, status)`,
      [rows.map((r) => r.orderId), rows.map((r) => r.kind), rows.map((r) => r.status ?? "pending"), invoice],
    );
  }
  const rowsOf = async (orderIds: string[]) =>
    (
      await checker.query(
        `select order_id, kind, status, attempts, claimed_by, last_error, next_attempt_at > now() as later
         from notifications where order_id = any($1::uuid[]) order by order_id, kind`,
        [orderIds],
      )
    ).rows;
  /** Claim locks held in this database (other databases on the server have senders of their own). */
  const claimLocks = async () =>
    Number(
      (
        await checker.query(
          `select count(*) from pg_locks where locktype = 'advisory' and classid = 7301002
             and database = (select oid from pg_database where datname = current_database())`,
        )
      ).rows[0].count,
    );
  const kindOf = (text: string) =>
    text.includes("pg_try_advisory_lock")
      ? "claim"
      : /^with done as \(update \S+ set status = 'sent'/.test(text)
        ? "mark"
        : text;

  for (const n of [1, 12])
    it(`sends a batch of ${n} in one claim and one mark, whatever its size`, async () => {
      // Every send waits until the whole batch is in the mailer's hands, as a batch that ends together.
      let release: () => void = () => {};
      const together = new Promise<void>((resolve) => {
        release = resolve;
      });
      const { sent, mailer } = recordingMailer(async (sofar) => {
        if (sofar.length === n) release();
        await together;
      });
      statements.length = 0;
      await startSender({ mailer });
      // Idle: it has looked once and found nothing.
      await eventually(() => statements.some((s) => kindOf(s) === "claim"), {
        what: "the sender's first look",
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const orders: string[] = [];
      for (let i = 0; i < n; i++) orders.push(await order(1 + (i % 3)));
      statements.length = 0;
      await notify(orders.map((orderId) => ({ orderId, kind: "confirmed" })));

      await eventually(
        async () => (await rowsOf(orders)).every((r) => r.status === "sent") && sent.length === n,
        { what: `${n} emails sent and marked` },
      );
      // A moment for the looks that follow (each wake-up costs one claim that finds nothing).
      await new Promise((resolve) => setTimeout(resolve, 300));
      await eventually(async () => (await claimLocks()) === 0, { what: "every claim let go" });
      await stopSenders();

      // The claim that took the batch (locks, stamps, orders and lines), the mark that let it go, and one
      // more look, woken by the confirmations marked sent (their completions may go now): nothing per email.
      expect(statements.map(kindOf)).toEqual(["claim", "mark", "claim"]);
      // Each email from its own order, read with the claim.
      expect(sent.map((e) => e.orderId).sort()).toEqual([...orders].sort());
      for (const email of sent) {
        const lines = 1 + (orders.indexOf(email.orderId) % 3);
        expect(email.text.match(/EBOOK-1/g)).toHaveLength(lines);
        expect(email.attachments.map((a) => a.filename)).toEqual(["INV-000001.pdf"]);
      }
    });

  it("claims the rows of wake-ups close together at once, and marks the emails accepted within markWithinMs in one statement", async () => {
    const { sent, mailer } = recordingMailer();
    statements.length = 0;
    await startSender({ mailer, claimEveryMs: 400, markWithinMs: 1_500 });
    await eventually(() => statements.some((s) => kindOf(s) === "claim"), { what: "the first look" });
    const orders = [await order(), await order(), await order()];
    // Past the first look's pace, so the first row is claimed at once.
    await new Promise((resolve) => setTimeout(resolve, 500));
    statements.length = 0;
    // Three commits, three wake-ups, 60 ms apart: the first is claimed at once, the others wait for the pace.
    for (const orderId of orders) {
      await notify([{ orderId, kind: "confirmed" }]);
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    await eventually(async () => (await rowsOf(orders)).every((r) => r.status === "sent"), {
      what: "the three emails marked sent",
    });
    await stopSenders();

    expect(sent.map((e) => e.orderId).sort()).toEqual([...orders].sort());
    const kinds = statements.map(kindOf);
    const beforeMark = kinds.slice(0, kinds.indexOf("mark"));
    // Fewer claims than wake-ups (one a wake-up would make three), and one mark for the three emails,
    // accepted some 400 ms apart.
    expect(beforeMark.every((k) => k === "claim")).toBe(true);
    expect(beforeMark.length).toBeLessThanOrEqual(2);
    expect(kinds.filter((k) => k === "mark")).toHaveLength(1);
  });

  it("treats a mixed batch as one email at a time would: order, cancel, a missing order, back-off", async () => {
    const [both, cancelled, confirmedEarlier, notYet] = [
      await order(),
      await order(1, "cancelled"),
      await order(),
      await order(),
    ];
    const missing = randomUUID();
    await notify([
      { orderId: both, kind: "confirmed" },
      { orderId: both, kind: "completed" },
      { orderId: cancelled, kind: "confirmed" },
      { orderId: confirmedEarlier, kind: "confirmed", status: "sent" },
      { orderId: confirmedEarlier, kind: "completed" },
      { orderId: notYet, kind: "confirmed", status: "waiting" },
      { orderId: notYet, kind: "completed" },
      { orderId: missing, kind: "confirmed" },
    ]);
    const { sent, mailer } = recordingMailer();
    await startSender({ mailer });

    await eventually(
      async () => {
        const rows = await rowsOf([both, confirmedEarlier]);
        return rows.every((r) => r.status === "sent") && (await rowsOf([missing]))[0]?.attempts === 1;
      },
      { what: "the batch to settle" },
    );
    await eventually(async () => (await claimLocks()) === 0, { what: "every claim let go" });
    await stopSenders();

    // The confirmation before the completion, none for the cancelled order, the completion of an order
    // whose confirmation is not sent yet held back.
    expect(sent.map((e) => [e.orderId, e.kind])).toEqual(
      expect.arrayContaining([
        [both, "confirmed"],
        [both, "completed"],
        [confirmedEarlier, "completed"],
      ]),
    );
    expect(sent).toHaveLength(3);
    const ofBoth = sent.filter((e) => e.orderId === both).map((e) => e.kind);
    expect(ofBoth).toEqual(["confirmed", "completed"]);
    expect(await rowsOf([cancelled])).toMatchObject([
      { kind: "confirmed", status: "cancelled", attempts: 0 },
    ]);
    expect(await rowsOf([notYet])).toMatchObject([
      { kind: "completed", status: "pending", attempts: 0 },
      { kind: "confirmed", status: "waiting" },
    ]);
    // No order, no email: tried, and tried again later, its claim let go.
    expect(await rowsOf([missing])).toMatchObject([
      {
        status: "pending",
        attempts: 1,
        claimed_by: null,
        later: true,
        last_error: `Error: order ${missing} not found`,
      },
    ]);
  });

  it("lets go of the locks a failed claim took, so that another sender can take the rows", async () => {
    const orderId = await order();
    await checker.query(`create function refuse_claims() returns trigger language plpgsql as $$
      begin raise exception 'claims refused'; end $$`);
    await checker.query(`create trigger refuse_claims before update on notifications for each row
      when (new.claimed_by is distinct from old.claimed_by and new.claimed_by is not null)
      execute function refuse_claims()`);
    const { sent, mailer } = recordingMailer();
    try {
      await startSender({ mailer, pollMs: 50 });
      statements.length = 0;
      await notify([{ orderId, kind: "confirmed" }]);
      // Each claim locks the row, then fails on the UPDATE: the lock must not outlive it.
      await eventually(() => statements.filter((s) => kindOf(s) === "claim").length >= 3, {
        what: "claims that fail",
      });
      await eventually(async () => (await claimLocks()) === 0, { what: "no claim lock left held" });
    } finally {
      await checker.query("drop trigger refuse_claims on notifications; drop function refuse_claims()");
    }
    // A second sender beside the first (its own session): the row is free to take.
    const other = recordingMailer();
    await startSender({ mailer: other.mailer, pollMs: 50 });
    await eventually(async () => (await rowsOf([orderId]))[0]?.status === "sent", { what: "the email sent" });
    await eventually(async () => (await claimLocks()) === 0, { what: "every claim let go" });
    await stopSenders();
    expect([...sent, ...other.sent].map((e) => e.orderId)).toEqual([orderId]);
  });

  it("sends each email once, each confirmation first, while three senders claim side by side", async () => {
    const orders: string[] = [];
    for (let i = 0; i < 40; i++) orders.push(await order());
    const ofThese = (e: OutgoingEmail) => orders.includes(e.orderId);
    // Every send of the three, in the order they were handed to a mailer.
    const handed: OutgoingEmail[] = [];
    const mailers = [0, 1, 2].map(() =>
      recordingMailer(async (sofar) => {
        handed.push(sofar.at(-1)!);
        // A few milliseconds, so that claims meet sends in flight.
        await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8));
      }),
    );
    // Each with its own database (pool and session), as separate processes would be.
    const databases = await Promise.all(
      mailers.map(() =>
        openDatabase({ url: testDb.url, dataDir: mkdtempSync(join(tmpdir(), "notifier-sender-")) }),
      ),
    );
    try {
      for (const [i, { mailer }] of mailers.entries())
        await startSender({ database: databases[i]!, mailer, concurrency: 4 });
      await notify(
        orders.flatMap((orderId) => [
          { orderId, kind: "confirmed" as const },
          { orderId, kind: "completed" as const },
        ]),
      );
      await eventually(async () => (await rowsOf(orders)).every((r) => r.status === "sent"), {
        what: "every email sent",
        timeoutMs: 30_000,
      });
      await eventually(async () => (await claimLocks()) === 0, { what: "every claim let go" });
    } finally {
      await stopSenders();
      for (const db of databases) await db.close();
    }
    const sent = handed.filter(ofThese);
    expect(sent).toHaveLength(80);
    expect(new Set(sent.map((e) => e.messageId)).size).toBe(80);
    for (const orderId of orders)
      expect(sent.filter((e) => e.orderId === orderId).map((e) => e.kind)).toEqual([
        "confirmed",
        "completed",
      ]);
    expect(mailers.filter((m) => m.sent.some(ofThese)).length).toBeGreaterThan(1);
  });
});
