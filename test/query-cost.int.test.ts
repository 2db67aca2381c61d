import { parse } from "graphql";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { deleteStream, gqlData, startTestService, type TestService, tokens } from "./support/service.ts";
import { statementCount } from "./support/statements.ts";

/** Every per-order field a client may ask for on a page of orders. */
const OrdersWithEverything = parse(`
  query OrdersWithEverything($first: Int) {
    orders(first: $first) {
      edges {
        node {
          id
          lines { sku quantity }
          modules { module state ... on FinanceState { invoiceNumber } }
          events { id type }
          completion { waitingFor modules { module done } }
          deadLetters { id }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const OrderWithEverything = parse(`
  query OrderWithEverything($id: ID!) {
    order(id: $id) {
      id
      lines { sku quantity }
      modules { module state }
      events { id type }
      completion { waitingFor }
      deadLetters { id }
    }
  }
`);

describe("what a page of orders costs in SQL statements", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService;
  let orderIds: string[];

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestService({ databaseUrl: db.url, natsPrefix: prefix, roles: "gateway" });
    const customer = await tokens.customer();
    orderIds = [];
    for (let i = 0; i < 50; i++) {
      const { placeOrder } = (await gqlData(
        app.url!,
        parse(`mutation ($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } } }`) as never,
        {
          input: {
            // Every module is involved in every order, so each page reads the same tables.
            lines: ["EBOOK-1", "MUG-1", "TRIP-LIS", "BOX-MONTHLY"].map((sku) => ({ sku, quantity: 1 })),
            contactEmail: "ada@example.com",
            idempotencyKey: `cost-${i}`,
          },
        },
        customer,
      )) as { placeOrder: unknown };
      orderIds.push((placeOrder as { order: { id: string } }).order.id);
    }
    // The modules' rows, as their listeners would have written them.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      for (const [table, state, columns, values] of [
        ["finance_invoices", "issued", "amount, currency, invoice_number", "1, 'EUR', 'INV-' || id"],
        ["logistics_shipments", "waiting", "pick_list", `'[{"sku":"MUG-1","quantity":1}]'`],
        ["travelium_bookings", "reserved", "allotment_reference", "'ALLOT-' || id"],
        ["subscription_contracts", "active", "plans", `'[{"sku":"BOX-MONTHLY","quantity":1}]'`],
      ]) {
        await client.query(
          `insert into ${table} (order_id, state, ${columns})
           select id, $2, ${values} from unnest($1::uuid[]) as id`,
          [orderIds, state],
        );
      }
    } finally {
      await client.end();
    }
  });

  afterAll(async () => {
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  const page = async (first: number) => {
    const admin = await tokens.admin();
    let data: unknown;
    const statements = await statementCount(async () => {
      data = await gqlData(app.url!, OrdersWithEverything as never, { first }, admin);
    });
    const edges = (data as { orders: { edges: { node: { modules: unknown[]; lines: unknown[] } }[] } }).orders
      .edges;
    return { statements, edges };
  };

  it("orders(first: 5), (first: 20) and (first: 50) with lines, modules, events, completion run the same few statements", async () => {
    const five = await page(5);
    const twenty = await page(20);
    const fifty = await page(50);
    expect(five.edges).toHaveLength(5);
    expect(fifty.edges).toHaveLength(50);
    // The loads did load: every order has its four lines and its four module rows.
    for (const { node } of fifty.edges) {
      expect(node.lines).toHaveLength(4);
      expect(node.modules).toHaveLength(4);
    }
    console.info(
      `SQL statements: orders(first: 5) ${five.statements}, (first: 20) ${twenty.statements}, (first: 50) ${fifty.statements}`,
    );
    expect(twenty.statements).toBe(five.statements);
    expect(fifty.statements).toBe(five.statements);
    // The page, its lines, events and dead letters, one per module table.
    expect(fifty.statements).toBeLessThanOrEqual(8);
  });

  it("order(id) with the same fields reads each module table once", async () => {
    const admin = await tokens.admin();
    const statements = await statementCount(() =>
      gqlData(app.url!, OrderWithEverything as never, { id: orderIds[0] }, admin),
    );
    console.info(`SQL statements: order(id) ${statements}`);
    expect(statements).toBeLessThanOrEqual(8);
  });
});
