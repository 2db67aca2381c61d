/**
 * Deliveries per digital order, per durable consumer: what JetStream hands
 * each listener against what the listener handles (its inbox rows). Rerun:
 * `NATS_URL=nats://127.0.0.1:4222 npx tsx bench/deliveries.ts [orders]`, once
 * on a 2.9 server and once on a 2.10 one. Counts, not times: they do not
 * depend on the machine's load.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { createTestDatabase, natsUrl, testPrefix } from "../test/support/database.ts";
import { startTestService, tokens } from "../test/support/service.ts";
import { orderClient, sleep } from "./support.ts";

const orders = Number(process.argv[2] ?? 20);
const db = await createTestDatabase();
const prefix = testPrefix();
const app = await startTestService({ databaseUrl: db.url, natsPrefix: prefix });
const nc = await connect({ servers: natsUrl });
const jsm = await jetstreamManager(nc);
const sql = new pg.Client({ connectionString: db.url });
await sql.connect();
try {
  const client = orderClient(app.url!, {
    customer: await tokens.customer(),
    payments: await tokens.payments(),
  });
  const started = Date.now();
  // Placed and paid a few at a time, as concurrent storefronts would.
  await Promise.all(
    Array.from({ length: 4 }, async (_, lane) => {
      for (let i = lane; i < orders; i += 4) await client.confirm(await client.place());
    }),
  );
  const count = async (q: string) => Number((await sql.query(q)).rows[0].n);
  for (let waited = 0; ; waited += 100) {
    if ((await count("select count(*) as n from sales_orders where status = 'completed'")) === orders) break;
    if (waited > 60_000) throw new Error("orders did not complete within 60 s");
    await sleep(100);
  }
  const tookMs = Date.now() - started;
  // Every consumer done: nothing pending, nothing unacknowledged, twice in a row a moment apart.
  const consumers = async () => {
    const all = [];
    for await (const c of await jsm.consumers.list(`${prefix}_events`)) all.push(c);
    return all.filter((c) => c.config.durable_name);
  };
  for (let quiet = 0; quiet < 2; ) {
    await sleep(500);
    const busy = (await consumers()).some((c) => c.num_pending > 0 || c.num_ack_pending > 0);
    quiet = busy ? 0 : quiet + 1;
  }
  const handled = new Map(
    (await sql.query("select consumer, count(*)::int as n from processed_events group by consumer")).rows.map(
      (r) => [r.consumer as string, r.n as number],
    ),
  );
  const events = await count("select count(*) as n from order_events");
  console.log(
    `nats-server ${nc.info?.version}, ${orders} digital orders, ${events / orders} events per order, all completed ${tookMs} ms after the first was placed (noisy: a shared machine)`,
  );
  console.log("consumer       filter                                       deliveries/order  handled/order");
  let delivered = 0;
  let used = 0;
  for (const c of (await consumers()).sort((a, b) => a.name.localeCompare(b.name))) {
    const name = c.name.slice(prefix.length + 1);
    const filter = (c.config.filter_subjects ?? [c.config.filter_subject ?? ""])
      .map((s) => s.slice(prefix.length + 1))
      .join(",");
    const d = c.delivered.consumer_seq;
    const h = handled.get(name) ?? 0;
    delivered += d;
    used += h;
    console.log(
      `${name.padEnd(14)} ${filter.slice(0, 44).padEnd(44)} ${(d / orders).toFixed(2).padStart(16)} ${(h / orders).toFixed(2).padStart(14)}`,
    );
  }
  console.log(
    `${"all".padEnd(14)} ${"".padEnd(44)} ${(delivered / orders).toFixed(2).padStart(16)} ${(used / orders).toFixed(2).padStart(14)}`,
  );
} finally {
  await sql.end();
  await app.stop();
  await jsm.streams.delete(`${prefix}_events`).catch(() => {});
  await nc.close();
  await db.drop();
}
