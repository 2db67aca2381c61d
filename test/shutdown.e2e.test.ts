import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./support/cluster.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { FaultChecker, problemsOf, type SubscriberView } from "./support/fault-checker.ts";
import { type DrivenOrder, driveOrders, planOrders, Subscriber } from "./support/load.ts";
import { deleteStream, liveSubscriptions } from "./support/service.ts";
import { type SmtpTestServer, startSmtpServer } from "./support/smtp.ts";

/**
 * SIGTERM under load, each role in its own process: it stops taking work,
 * finishes or hands back what it holds within SHUTDOWN_TIMEOUT_MS, and exits
 * 0; what it held is neither lost nor done twice.
 */
describe("bounded shutdown", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let smtp: SmtpTestServer;
  let sql: pg.Pool;
  let cluster: Cluster;
  let checker: FaultChecker;
  let views: SubscriberView[];
  const boundMs = 10_000;

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await startSmtpServer();
    sql = new pg.Pool({ connectionString: db.url, max: 3 });
    // A handed-back event must come back at once, not after the ack wait: a minute tells the two apart.
    cluster = new Cluster({
      databaseUrl: db.url,
      natsUrl,
      prefix,
      smtpUrl: smtp.url,
      env: { NATS_ACK_WAIT_MS: "60000" },
    });
    await cluster.start();
    checker = new FaultChecker(sql, smtp.received);
    // On the gateway that stays: one subscriber for all, one for a customer.
    const g1 = cluster.gateways[0]!;
    views = [
      { subscriber: new Subscriber("admin", g1, { role: "admin", id: "admin" }) },
      {
        subscriber: new Subscriber("customer-1", g1, { role: "customer", id: "customer-1" }),
        customer: "customer-1",
      },
    ];
    for (const { subscriber } of views) await subscriber.start();
    await liveSubscriptions(`${g1}/graphql`, 2);
  }, 180_000);

  afterAll(async () => {
    for (const { subscriber } of views ?? []) subscriber.close();
    await cluster?.stop();
    await sql?.end();
    await smtp?.close();
    await deleteStream(prefix);
    await db?.drop();
  });

  /** SIGTERM, and how the process ended and how long it took. */
  const terminate = async (name: string) => {
    const p = cluster.get(name);
    const at = Date.now();
    p.child.kill("SIGTERM");
    const exit = await p.exited;
    return { ...exit, ms: Date.now() - at, output: p.output };
  };

  it("each role, under load, stops within the bound and exits 0; its work is done once, by it or another", async () => {
    let driven = 0;
    const orders = driveOrders(cluster.gateways, planOrders(80, `shutdown-${Date.now()}`), {
      concurrency: 6,
      onDriven: (n) => {
        driven = n;
      },
    });
    const untilDriven = async (n: number) => {
      while (driven < n) await new Promise((resolve) => setTimeout(resolve, 100));
    };
    for (const [i, name] of ["workers", "relay", "notifier", "gateway2"].entries()) {
      await untilDriven(10 + i * 15);
      const port = name === "gateway2" ? new URL(cluster.gateways[1]!).port : undefined;
      const stopped = await terminate(name);
      expect({ name, code: stopped.code, signal: stopped.signal }).toEqual({ name, code: 0, signal: null });
      expect(stopped.ms).toBeLessThan(boundMs + 2_000);
      expect(stopped.output).toContain('"msg":"stopped"');
      // Another deploy of the same role (the gateway on its port, where clients find it).
      await cluster.restart(name, port ? { PORT: port } : {});
    }
    const driven_: DrivenOrder[] = await orders;
    await checker.settled(driven_, views, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(problemsOf(await checker.findings(driven_, views))).toEqual([]);
  }, 300_000);

  it("past the bound, hands back what it holds and exits 0; another process does it at once, once", async () => {
    await cluster.replace("workers", { SHUTDOWN_TIMEOUT_MS: "2000" });
    // Finance's batch waits on the invoice counter, which this transaction holds: it cannot finish.
    const blocker = await sql.connect();
    await blocker.query("begin");
    await blocker.query("update finance_invoice_counter set last = last");
    let orders: DrivenOrder[];
    try {
      orders = await driveOrders(
        cluster.gateways,
        planOrders(10, `handback-${Date.now()}`).filter((p) => p.kind === "digital"),
      );
      // Finance is stuck in its batch.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const stopped = await terminate("workers");
      expect({ code: stopped.code, signal: stopped.signal }).toEqual({ code: 0, signal: null });
      expect(stopped.ms).toBeLessThan(2_000 + 4_000);
      expect(stopped.output).toContain("not stopped within the bound");
      expect(stopped.output).toContain("handed back, exiting");
    } finally {
      await blocker.query("rollback");
      blocker.release();
    }
    await cluster.restart("workers");
    // Well before the minute of ack wait: the events were handed back, not left to time out.
    await checker.settled(orders, views, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(problemsOf(await checker.findings(orders, views))).toEqual([]);
  }, 180_000);
});
