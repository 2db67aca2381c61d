import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, type Db, openDatabase } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import { createMailer, type Mailer, notificationMessageId } from "../src/modules/notifier/mailer.ts";
import { createSender } from "../src/modules/notifier/sender.ts";
import { notifications } from "../src/modules/notifier/table.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { sagaClient } from "./support/saga.ts";
import { deleteStream, startTestService, type TestService } from "./support/service.ts";
import { type SmtpTestServer, startSmtpServer } from "./support/smtp.ts";
import { eventually } from "./support/wait.ts";

const root = join(import.meta.dirname, "..");
const mailFrom = "orders@shop.test";

/** An SMTP server that accepts connections and never says a word: a send to it hangs until the client gives up. */
async function startSilentSmtpServer() {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `smtp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `npm start` with ROLES=notifier: a notifier in an OS process of its own, to be killed or paused. */
class NotifierProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
  output = "";

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: { ...process.env, ...env, ROLES: "notifier", PORT: "0", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exited = new Promise((resolve) => this.child.once("exit", resolve));
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
  }

  started(): Promise<unknown> {
    return eventually(
      () => {
        if (this.child.exitCode !== null) throw new Error(`exited: ${this.output}`);
        return this.output.includes("probes and metrics on");
      },
      { what: "the notifier process to start", timeoutMs: 60_000 },
    );
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * A notifier that dies or stalls mid-send, with real processes, PostgreSQL,
 * JetStream and SMTP: its claim on a row ends with its database connection
 * (another notifier sends within seconds), never while it lives.
 */
describe("the notifier's claims", () => {
  const prefix = testPrefix();
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let smtp: SmtpTestServer;
  let silent: Awaited<ReturnType<typeof startSilentSmtpServer>>;
  let core: TestService;
  let db: Db;
  let saga: ReturnType<typeof sagaClient>;
  const services: TestService[] = [];
  const processes: NotifierProcess[] = [];

  const startNotifier = async () => {
    const service = await startTestService({
      databaseUrl: database.url,
      natsPrefix: prefix,
      roles: "notifier",
      env: { SMTP_URL: smtp.url, MAIL_FROM: mailFrom, NOTIFIER_RETRY_MS: "50" },
    });
    services.push(service);
    return service;
  };
  const stopNotifier = async (service: TestService) => {
    await service.stop();
    services.splice(services.indexOf(service), 1);
  };
  /** A notifier process whose every send hangs on the silent server. */
  const startHangingProcess = async () => {
    const notifier = new NotifierProcess({
      DATABASE_URL: database.url,
      NATS_URL: natsUrl,
      NATS_PREFIX: prefix,
      JWT_SECRET: "test-secret-not-for-production",
      DATA_DIR: mkdtempSync(join(tmpdir(), "notifier-process-")),
      SMTP_URL: silent.url,
      MAIL_FROM: mailFrom,
    });
    processes.push(notifier);
    await notifier.started();
    return notifier;
  };
  /** The order's confirmation row, once the process with this pid has claimed it. */
  const claimedBy = (orderId: string, pid: number) =>
    eventually(
      async () => {
        const [row] = await db
          .select()
          .from(notifications)
          .where(and(eq(notifications.orderId, orderId), eq(notifications.kind, "confirmed")));
        return row?.status === "pending" && row.claimedBy?.includes(`:${pid}:`) && row;
      },
      { what: `the confirmation of ${orderId} claimed by process ${pid}`, timeoutMs: 30_000 },
    );
  const mailsOf = (orderId: string) => smtp.forOrder(orderId).map((m) => m.kind);

  beforeAll(async () => {
    database = await createTestDatabase();
    smtp = await startSmtpServer();
    silent = await startSilentSmtpServer();
    core = await startTestService({
      databaseUrl: database.url,
      natsPrefix: prefix,
      roles: "gateway,relay,orders,finance,logistics,travelium,subscription",
    });
    db = core.service.database.db;
    saga = sagaClient(core.url!);
  });

  afterAll(async () => {
    for (const p of processes) await p.kill();
    for (const service of [...services].reverse()) await service.stop();
    await core?.stop();
    await smtp?.close();
    await silent?.close();
    await deleteStream(prefix);
    await database?.drop();
  });

  it("sends the mail of a notifier killed mid-send within seconds, from another notifier", async () => {
    const crashing = await startHangingProcess();
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await claimedBy(order.id, crashing.child.pid!);
    await eventually(() => silent.connections() > 0, { what: "the send to hang on the silent server" });
    // Another notifier, running before the crash: the row is not its to take while the first one lives.
    await startNotifier();

    await crashing.kill();
    const killedAt = Date.now();
    await eventually(() => mailsOf(order.id).includes("confirmed"), {
      what: "the confirmation, sent by the other notifier",
      timeoutMs: 10_000,
    });
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // Its completion event may have been in the killed process's hands too: JetStream hands it on after ack_wait (30 s).
    await eventually(() => mailsOf(order.id).length >= 2, {
      what: "the completion email",
      timeoutMs: 45_000,
    });
    expect(mailsOf(order.id)).toEqual(["confirmed", "completed"]);
  }, 120_000);

  it("leaves the mail of a paused notifier alone while it lives, and takes it over once it dies", async () => {
    for (const service of [...services]) await stopNotifier(service);
    const paused = await startHangingProcess();
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    const claim = await claimedBy(order.id, paused.child.pid!);
    paused.child.kill("SIGSTOP");

    // Another notifier beside it: the paused one's connection lives, and so does its claim.
    await startNotifier();
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(mailsOf(order.id)).toEqual([]);
    const [row] = await db
      .select()
      .from(notifications)
      .where(and(eq(notifications.orderId, order.id), eq(notifications.kind, "confirmed")));
    expect(row).toMatchObject({ status: "pending", claimedBy: claim.claimedBy });

    await paused.kill();
    const killedAt = Date.now();
    await eventually(() => mailsOf(order.id).includes("confirmed"), {
      what: "the confirmation, sent by the other notifier",
      timeoutMs: 10_000,
    });
    expect(Date.now() - killedAt).toBeLessThan(10_000);
  }, 120_000);

  it("never sends one mail twice while two notifiers run side by side", async () => {
    while (services.length < 2) await startNotifier();
    const orders = await Promise.all(Array.from({ length: 50 }, () => saga.placeAndConfirm(["EBOOK-1"])));
    for (const order of orders)
      await eventually(() => mailsOf(order.id).length >= 2, {
        what: `both emails of ${order.id}`,
        timeoutMs: 60_000,
      });
    // A moment for a second send of anything, were one coming.
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const ids = new Set(orders.map((o) => o.id));
    const received = smtp.received.filter((m) => ids.has(m.orderId)).map((m) => m.messageId);
    expect(received).toHaveLength(100);
    expect(new Set(received).size).toBe(100);
    for (const order of orders) expect(mailsOf(order.id)).toEqual(["confirmed", "completed"]);
    // Both took part: each row keeps the stamp of the sender that sent it.
    const rows = await db
      .select({ claimedBy: notifications.claimedBy })
      .from(notifications)
      .where(inArray(notifications.orderId, [...ids]));
    expect(new Set(rows.map((r) => r.claimedBy)).size).toBe(2);
  }, 120_000);
});

/** A TCP proxy to PostgreSQL that can cut every connection through it, and refuse new ones, for a while. */
async function startDatabaseProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let cut = false;
  const server = createServer((client) => {
    if (cut) return client.destroy();
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("the notifier's marking", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let proxy: Awaited<ReturnType<typeof startDatabaseProxy>>;
  let smtp: SmtpTestServer;
  let direct: Database;
  let throughProxy: Database;

  beforeAll(async () => {
    database = await createTestDatabase();
    const url = new URL(database.url);
    proxy = await startDatabaseProxy({ host: url.hostname, port: Number(url.port || 5432) });
    smtp = await startSmtpServer();
    const dataDir = mkdtempSync(join(tmpdir(), "notifier-blip-"));
    direct = await openDatabase({ url: database.url, dataDir });
    url.port = String(proxy.port);
    throughProxy = await openDatabase({ url: url.toString(), dataDir });
  });

  afterAll(async () => {
    await throughProxy?.close();
    await direct?.close();
    await proxy?.close();
    await smtp?.close();
    await database?.drop();
  });

  it("marks a mail sent across a database outage of several seconds, and sends it once", async () => {
    const orderId = randomUUID();
    const messageId = notificationMessageId(orderId, "confirmed", mailFrom);
    await direct.db.insert(notifications).values({
      orderId,
      kind: "confirmed",
      status: "pending",
      heard: ["invoice-issued", "order-confirmed"],
      messageId,
      recipient: "ada@example.com",
    });
    const smtpMailer = createMailer({ smtpUrl: smtp.url, dataDir: tmpdir() });
    // The database goes away the moment the server has accepted the mail, for five seconds.
    const outage = { endedAt: 0 };
    const mailer: Mailer = {
      kind: smtpMailer.kind,
      async send(email) {
        await smtpMailer.send(email);
        proxy.cut();
        setTimeout(() => {
          proxy.restore();
          outage.endedAt = Date.now();
        }, 5_000);
      },
      close: () => smtpMailer.close(),
    };
    const sender = createSender({
      database: throughProxy,
      logger: createLogger("silent"),
      mailer,
      compose: async (row) => ({
        orderId: row.orderId,
        kind: row.kind,
        from: mailFrom,
        to: row.recipient,
        subject: "Thanks for your order",
        text: "Thanks",
        html: "<p>Thanks</p>",
        messageId: row.messageId,
        attachments: [],
      }),
    });
    await sender.start();
    try {
      await eventually(() => smtp.forOrder(orderId).length > 0, { what: "the mail" });
      const [row] = await eventually(
        async () => {
          const rows = await direct.db.select().from(notifications).where(eq(notifications.orderId, orderId));
          return rows[0]?.status === "sent" && rows;
        },
        { what: "the mail marked sent", timeoutMs: 20_000 },
      );
      expect(outage.endedAt).toBeGreaterThan(0);
      expect(row!.claimedBy).toContain(`:${process.pid}:`);
      // Nothing sent it again meanwhile, nor will: it is marked.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(smtp.forOrder(orderId).map((m) => m.messageId)).toEqual([messageId]);
    } finally {
      await sender.stop();
    }
  }, 60_000);
});
