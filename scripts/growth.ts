/**
 * npm run growth [-- --orders 100000]
 *
 * How the tables grow, and what the retention sweep takes back. Runs the
 * service (PostgreSQL on 127.0.0.1:5432 or TEST_DATABASE_ADMIN_URL, the
 * in-process bus) on a scratch database through four real orders (digital,
 * digital with a subscription, physical with a trip, cancelled), then copies
 * each order's rows in every table in SQL into `--orders` orders
 * (40 % digital, 30 % with a subscription, 20 % physical with a trip, 10 %
 * cancelled, interleaved),
 * dated back over 30 days (one every 26 s), with fresh ids. Prints each
 * table's size and live and dead tuples: after the load, after the sweep
 * (INBOX_RETENTION_HOURS 336), and after a plain VACUUM. Drops the database.
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { createLogger } from "../src/log.ts";
import { RetentionSweep } from "../src/statemachine/retention.ts";
import { createTestDatabase } from "../test/support/database.ts";
import { sagaClient } from "../test/support/saga.ts";
import { startTestService } from "../test/support/service.ts";

const { values } = parseArgs({ options: { orders: { type: "string", default: "100000" } } });
const total = Number(values.orders);
const spacingSeconds = 26;
const tables = [
  "sales_orders",
  "order_lines",
  "order_events",
  "processed_events",
  "module_notes",
  "partner_reports",
  "finance_invoices",
  "logistics_shipments",
  "travelium_bookings",
  "subscription_contracts",
  "notifications",
];
/** Which orders copy each template, by n mod 10 (interleaved, so every age has the same mix): 40/30/20/10 %. */
const mix: [number, number][] = [
  [0, 3],
  [4, 6],
  [7, 8],
  [9, 9],
];

const database = await createTestDatabase();
const client = new pg.Client({ connectionString: database.url });
try {
  const templates = await realOrders(database.url);
  await client.connect();
  const started = performance.now();
  await copyOrders(templates);
  process.stdout.write(
    `copied to ${total} orders in ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
  );
  const loaded = await measure();
  const sweep = new RetentionSweep({
    db: (await import("drizzle-orm/node-postgres")).drizzle(client),
    logger: createLogger("silent"),
    inboxRetentionMs: 336 * 3_600_000,
  });
  const sweptAt = performance.now();
  const swept = await sweep.sweep();
  const sweepSeconds = (performance.now() - sweptAt) / 1000;
  const afterSweep = await measure();
  await client.query("vacuum");
  const afterVacuum = await measure();
  process.stdout.write(
    `\nretention sweep: ${swept.inbox} inbox rows and ${swept.notes} notes deleted in ${sweepSeconds.toFixed(1)} s\n\n`,
  );
  process.stdout.write(report(loaded, afterSweep, afterVacuum));
} finally {
  await client.end().catch(() => {});
  await database.drop();
}

/** Four orders through the real service; answers their ids. */
async function realOrders(url: string): Promise<string[]> {
  const app = await startTestService({ databaseUrl: url });
  try {
    const saga = sagaClient(app.url!);
    const digital = await saga.placeAndConfirm(["EBOOK-1"]);
    const subscription = await saga.placeAndConfirm(["EBOOK-1", "BOX-MONTHLY"]);
    const physical = await saga.placeAndConfirm(["MUG-1", "TRIP-LIS"]);
    await saga.until(physical.id, { rows: { logistics: "waiting", travelium: "reserved" } });
    await saga.shipment(physical.id, "DELIVERED");
    await saga.booking(physical.id, "TRAVELLED");
    const cancelled = await saga.placeAndConfirm(["MUG-1", "TRIP-LIS"]);
    await saga.until(cancelled.id, { rows: { logistics: "waiting" } });
    await saga.cancel(cancelled.id);
    for (const order of [digital, subscription, physical])
      await saga.until(order.id, { status: "COMPLETED" });
    await saga.until(cancelled.id, {
      status: "CANCELLED",
      rows: { logistics: "returned", finance: "refunded" },
    });
    // The mail is sent and marked.
    await new Promise((r) => setTimeout(r, 2_000));
    return [digital.id, subscription.id, physical.id, cancelled.id];
  } finally {
    await app.stop();
  }
}

/**
 * Copies every row of each template order n times: each id of the order or
 * of its events becomes md5(id || n) (the same in every table, so inbox rows
 * still name their events), unique texts get n appended, every timestamp
 * moves back by n × spacing.
 */
async function copyOrders(templates: string[]): Promise<void> {
  for (const [t, orderId] of templates.entries()) {
    const [low, high] = mix[t]!;
    await client.query("drop table if exists template_ids");
    await client.query(
      `create temp table template_ids as
        select id::text from order_events where order_id = $1 union select $1::text`,
      [orderId],
    );
    for (const table of tables) {
      const columns = (
        await client.query(
          `select column_name, data_type from information_schema.columns
            where table_name = $1 and table_schema = 'public' and column_name <> 'seq' and column_default is distinct from 'nextval'
            order by ordinal_position`,
          [table],
        )
      ).rows.filter((c: { column_name: string }) => !(table === "order_events" && c.column_name === "seq"));
      const list = columns.map((c: { column_name: string }) => `"${c.column_name}"`).join(", ");
      const value = (c: { column_name: string; data_type: string }) => {
        const col = `r."${c.column_name}"`;
        if (c.data_type === "uuid")
          return `case when ${col}::text in (select id from template_ids) then md5(${col}::text || g.n)::uuid else ${col} end`;
        if (c.data_type.startsWith("timestamp")) return `${col} - g.n * interval '${spacingSeconds} seconds'`;
        if (["invoice_number", "idempotency_key", "message_id"].includes(c.column_name))
          return `${col} || '-' || g.n`;
        return col;
      };
      const orderColumn = table === "sales_orders" ? "id" : "order_id";
      const hasOrder = columns.some((c: { column_name: string }) => c.column_name === orderColumn);
      const where =
        table === "processed_events"
          ? "r.event_id::text in (select id from template_ids)"
          : hasOrder
            ? `r.${orderColumn} = '${orderId}'`
            : "false";
      await client.query(
        `insert into ${table} (${list})
          select ${columns.map(value).join(", ")}
            from ${table} r cross join generate_series(1, ${total}) as g(n)
           where g.n % 10 between ${low} and ${high} and ${where}`,
      );
    }
  }
  // The four real orders stay as they were (their copies have other ids).
  await client.query("analyze");
}

interface Size {
  table: string;
  bytes: number;
  live: number;
  dead: number;
}

async function measure(): Promise<Size[]> {
  await client.query("select pg_stat_force_next_flush()");
  await new Promise((r) => setTimeout(r, 1_500));
  const rows = await client.query(
    `select relname as table, pg_total_relation_size(relid)::bigint as bytes, n_live_tup as live, n_dead_tup as dead
       from pg_stat_user_tables where relname = any($1)`,
    [tables],
  );
  const sizes: Size[] = [];
  for (const table of tables) {
    const row = rows.rows.find((r: { table: string }) => r.table === table);
    // Counted, not the statistics' estimate.
    const live = Number((await client.query(`select count(*) as n from ${table}`)).rows[0].n);
    sizes.push({ table, bytes: Number(row?.bytes ?? 0), live, dead: Number(row?.dead ?? 0) });
  }
  return sizes;
}

function report(...stages: Size[][]): string {
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  const lines = [
    "| table | after load: MB / live / dead | after the sweep: MB / live / dead | after VACUUM: MB / live / dead |",
    "| --- | --- | --- | --- |",
  ];
  for (const table of tables) {
    const cells = stages.map((stage) => {
      const s = stage.find((x) => x.table === table)!;
      return `${mb(s.bytes)} / ${s.live} / ${s.dead}`;
    });
    lines.push(`| ${table} | ${cells.join(" | ")} |`);
  }
  const sum = (stage: Size[]) => mb(stage.reduce((a, s) => a + s.bytes, 0));
  lines.push(`| all | ${stages.map((s) => `${sum(s)} MB`).join(" | ")} |`);
  return `${lines.join("\n")}\n`;
}
