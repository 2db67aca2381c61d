import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modules } from "../src/modules/index.ts";
import { notifierListener } from "../src/modules/notifier/listener.ts";
import type { BusEvent } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { moduleListener } from "../src/statemachine/module-listener.ts";
import { ordersListener } from "../src/statemachine/orders-listener.ts";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { type NatsCluster, startCluster } from "./support/private-nats.ts";
import { sagaClient } from "./support/saga.ts";
import { liveSubscriptions, startTestService, type TestService, tokens } from "./support/service.ts";
import { completedLifecycle, subscriber } from "./support/subscriber.ts";
import { eventually } from "./support/wait.ts";

const orders = 120;

/** An instance's emails (no SMTP_URL: .eml files under its DATA_DIR). */
function mails(dataDir: string): string[] {
  try {
    return readdirSync(join(dataDir, "mail")).filter((f) => f.endsWith(".eml"));
  } catch {
    return [];
  }
}

/**
 * Two instances of the service (each every role: gateway, relay, listeners,
 * notifier; in this process, each with its own NATS connection and its own
 * database pool) on a three-node JetStream cluster of OS processes, the stream on three replicas.
 * Orders are placed and paid through both gateways while the node leading
 * the stream is SIGKILLed and started again. Afterwards: every order
 * completed, every listener has every event of its types in its inbox and
 * did its work once, two emails per order, and a subscriber on each gateway
 * saw each order's changes once, in order.
 */
describe("a three-node NATS cluster losing a node under load", () => {
  let cluster: NatsCluster;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let client: pg.Client;
  const instances: TestService[] = [];
  const dataDirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), "cluster-instance-")));
  const prefix = testPrefix();

  beforeAll(async () => {
    cluster = await startCluster(3);
    if ("skip" in cluster) return;
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // The stream as a one-replica deployment left it: the instances bring it to three.
    const single = new JetStreamBus({ url: cluster.urls, prefix, limits: { replicas: 1 } });
    await single.start();
    await single.close();
    for (const dataDir of dataDirs)
      instances.push(
        await startTestService({
          databaseUrl: db.url,
          natsPrefix: prefix,
          env: {
            NATS_URL: cluster.urls.join(","),
            NATS_REPLICAS: "3",
            RATE_LIMIT_PER_MINUTE: "100000",
            DATA_DIR: dataDir,
          },
        }),
      );
  }, 90_000);

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await client?.end();
    await db?.drop();
    if (cluster && !("skip" in cluster)) await cluster.stop();
  });

  it("loses nothing and doubles nothing when the stream's leader is killed and restarted", async (context) => {
    if ("skip" in cluster) return context.skip(cluster.skip);
    const nc = await connect({ servers: cluster.urls });
    const jsm = await jetstreamManager(nc);
    const stream = await jsm.streams.info(`${prefix}_events`);
    expect(stream.config.num_replicas).toBe(3);
    expect(stream.cluster?.replicas).toHaveLength(2);
    // A process started without NATS_REPLICAS (a rolling deploy, a tool) does not take copies away.
    const forgetful = new JetStreamBus({ url: cluster.urls, prefix, limits: { replicas: 1 } });
    await forgetful.start();
    await forgetful.close();
    expect((await jsm.streams.info(`${prefix}_events`)).config.num_replicas).toBe(3);

    const urls = instances.map((i) => i.url!);
    const watchers = await Promise.all(
      urls.map(async (url) => {
        const watcher = subscriber(url, await tokens.admin());
        await liveSubscriptions(url);
        return watcher;
      }),
    );
    const sagas = urls.map((url) => sagaClient(url));

    // Eight clients at once, taking turns between the gateways; digital and digital-plus-subscription orders.
    const placed: { id: string }[] = [];
    let next = 0;
    const client8 = async (worker: number) => {
      while (next < orders) {
        const n = next++;
        const saga = sagas[(worker + n) % sagas.length]!;
        placed.push(await saga.placeAndConfirm(n % 2 === 0 ? ["EBOOK-1"] : ["EBOOK-1", "BOX-MONTHLY"]));
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => client8(w)));

    await eventually(() => placed.length >= orders / 3, { what: "a third of the orders", timeoutMs: 60_000 });
    const leader = (await jsm.streams.info(`${prefix}_events`)).cluster?.leader;
    const victim = cluster.nodes.find((n) => n.name === leader)!;
    expect(victim).toBeDefined();
    await nc.close();
    await victim.kill();
    const killedAt = placed.length;
    await new Promise((r) => setTimeout(r, 3_000));
    await victim.start();
    await load;
    // Orders went on being placed while the node was away.
    expect(placed.length).toBe(orders);
    expect(killedAt).toBeLessThan(orders);

    const count = async (text: string) => Number((await client.query(text)).rows[0].n);
    await eventually(
      async () =>
        (await count("select count(*) as n from sales_orders where status = 'completed'")) === orders,
      {
        what: `${orders} orders completed`,
        timeoutMs: 60_000,
      },
    );
    await eventually(
      async () =>
        (await count("select count(*) as n from order_events where published_at is null")) === 0 &&
        (await count("select count(*) as n from notifications where status = 'sent'")) === 2 * orders,
      { what: "the outbox and the mail to drain", timeoutMs: 30_000 },
    );

    // Nothing lost: every listener has every event of its types in its inbox (and nothing in dead letters).
    // Deliveries held by the killed node's consumers come again after the ack wait (30 s).
    const listeners = [
      ordersListener(modules),
      ...modules.map(moduleListener),
      notifierListener({ mailFrom: "x@y" }),
    ];
    // The events each listener must have recorded: those of its types, but for a first delivery it skips
    // unread (an event that shows it has nothing to do there), which leaves no inbox row.
    const events: BusEvent[] = (
      await client.query("select id, type, order_id, payload, occurred_at from order_events")
    ).rows.map((r) => ({
      id: r.id,
      type: r.type,
      orderId: r.order_id,
      payload: r.payload,
      occurredAt: r.occurred_at.toISOString(),
    }));
    const missing = async () => {
      const counts: Record<string, number> = {};
      for (const listener of listeners) {
        const inbox = new Set(
          (
            await client.query("select event_id from processed_events where consumer = $1", [listener.name])
          ).rows.map((r) => r.event_id as string),
        );
        counts[listener.name] = events.filter(
          (e) => listener.types.includes(e.type) && !listener.skips?.(e) && !inbox.has(e.id),
        ).length;
      }
      return counts;
    };
    let last: Record<string, number> = {};
    await eventually(
      async () => {
        last = await missing();
        return Object.values(last).every((n) => n === 0);
      },
      { what: "every listener to have every event of its types", timeoutMs: 45_000 },
    ).catch(() => expect(last).toEqual(Object.fromEntries(listeners.map((l) => [l.name, 0]))));
    expect(await count("select count(*) as n from dead_letters")).toBe(0);

    // Nothing doubled: one lifecycle per order, one invoice each (numbers without gaps), one subscription row
    // per subscription order, two emails per order across both instances.
    const lifecycles = await client.query(
      "select order_id, array_agg(payload->>'to' order by seq) as states from order_events where type = 'OrderStateChanged' group by order_id",
    );
    expect(lifecycles.rows).toHaveLength(orders);
    for (const row of lifecycles.rows)
      expect(row.states).toEqual(["pending", "confirmed", "fulfilling", "completed"]);
    expect(await count("select count(*) as n from finance_invoices where state = 'paid'")).toBe(orders);
    expect(await count("select last as n from finance_invoice_counter")).toBe(orders);
    expect(await count("select count(*) as n from subscription_contracts where state = 'active'")).toBe(
      orders / 2,
    );
    expect(dataDirs.flatMap(mails)).toHaveLength(2 * orders);

    // Every subscriber, on either gateway, saw each order's changes once and in order.
    for (const [i, watcher] of watchers.entries()) {
      await eventually(() => placed.every((o) => watcher.of(o.id).length >= 4), {
        what: "every change on both gateways",
        timeoutMs: 30_000,
      }).catch(() => {
        const short = placed.filter((o) => watcher.of(o.id).length < 4);
        expect(
          short.map((o) => ({ gateway: i, order: o.id, saw: watcher.of(o.id) })),
          `changes gateway ${i} did not hand on`,
        ).toEqual([]);
      });
      for (const order of placed) expect(watcher.of(order.id)).toEqual(completedLifecycle);
      expect(new Set(watcher.changes.map((c) => c.eventId)).size).toBe(watcher.changes.length);
      expect(watcher.failure()).toBeUndefined();
      watcher.close();
    }
  }, 150_000);
});
