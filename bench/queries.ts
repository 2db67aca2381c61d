/**
 * Read paths against the same server's trivial request: `order(id)` and
 * `orders(first: 20)` with lines, modules, events and completion, each from
 * 50 concurrent connections for a fixed time, beside `{ __typename }` from
 * the same connections; SQL statements per request counted at the service's
 * pg clients.
 */
import { tokens } from "../test/support/service.ts";
import { httpRate } from "./limits.ts";
import { closedLoop, Seen, watchAll } from "./load.ts";
import { spawnService } from "./service.ts";
import { benchEnv, int, orderClient, progress, type Section, sleep } from "./support.ts";

const connections = Number(process.env.BENCH_QUERY_CONNECTIONS ?? 50);
const durationMs = Number(process.env.BENCH_QUERY_SECONDS ?? 5) * 1000;

const orderFields = `
  id status customerId contactEmail createdAt updatedAt requiredModules involvedModules
  total { amount currency }
  lines { sku name kind quantity unitPrice { amount currency } }
  modules { module state updatedAt }
  events { id type occurredAt }
  completion { complete waitingFor modules { module required done state } }`;

const orderDoc = `query BenchOrder($id: ID!) { order(id: $id) { ${orderFields} } }`;
const ordersDoc = `query BenchOrders { orders(first: 20) { edges { cursor node { ${orderFields} } } pageInfo { hasNextPage endCursor } } }`;

export async function run(): Promise<Section> {
  const step = progress("queries");
  const env = await benchEnv();
  const app = await spawnService(env);
  const customer = await tokens.customer();
  const orders = orderClient(app.url, { customer, payments: await tokens.payments() });
  // Completed orders to read: every module row and event an order gets.
  const seen = new Seen();
  const watcher = watchAll(app.url, customer, seen);
  await sleep(300);
  let placed = 0;
  while (placed < 40) placed += (await closedLoop(orders, seen, { clients: 8, durationMs: 1_000 })).started;
  await watcher.close();
  const { rows } = await env.pool.query<{ id: string }>(
    "select id from sales_orders where status = 'completed' order by created_at desc limit 1",
  );
  const id = rows[0]!.id;
  step(`${placed} orders completed`);

  const measure = async (query: string, variables: Record<string, unknown> = {}) => {
    await httpRate(app.url, { query, variables }, { connections, durationMs: 1_000, token: customer }); // warm-up
    const sql0 = await app.sql();
    const r = await httpRate(app.url, { query, variables }, { connections, durationMs, token: customer });
    const sql1 = await app.sql();
    return { ...r, statements: (sql1.statements - sql0.statements) / r.requests };
  };
  const typename = await measure("{ __typename }");
  const order = await measure(orderDoc, { id });
  const list = await measure(ordersDoc);
  const typenameAgain = await measure("{ __typename }");
  step("measured");
  await app.stop();

  const base = (typename.perSecond + typenameAgain.perSecond) / 2;
  const row = (name: string, r: typeof order, target: string) => [
    name,
    `${int(Math.round(r.perSecond))} req/s`,
    `**${Math.round((100 * r.perSecond) / base)}%**`,
    r.statements.toFixed(1),
    target,
  ];
  return {
    title: `Queries: ${connections} connections, ${durationMs / 1000} s each, against { __typename } on the same server`,
    columns: ["request", "rate", "of { __typename }", "SQL statements per request", "target"],
    rows: [
      [
        "**limit**: `{ __typename }` (before / after the others)",
        `${int(Math.round(typename.perSecond))} / ${int(Math.round(typenameAgain.perSecond))} req/s`,
        "100%",
        typename.statements.toFixed(1),
        "",
      ],
      row("`order(id)` with lines, modules, events, completion", order, "≥ 70%"),
      row("`orders(first: 20)`, the same fields", list, "≥ 50%, a constant number of statements"),
    ],
    notes: [
      "The customer's token on every request (token verification included in each figure); the load generator in the bench process, the service in its own.",
      `The data: ${placed} completed EBOOK-1 orders of that customer, so a page holds 20 orders with their invoice rows and events.`,
    ],
  };
}
