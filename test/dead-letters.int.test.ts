import { sql } from "drizzle-orm";
import { print } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "../src/db/database.ts";
import type { Listener } from "../src/relay/listener.ts";
import { graphql } from "./generated/index.ts";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { OrderStateChanged } from "./support/operations.ts";
import { sagaClient } from "./support/saga.ts";
import {
  deleteStream,
  errorCode,
  gql,
  gqlData,
  startTestService,
  type TestService,
  tokens,
  wsClient,
} from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const DeadLetters = graphql(`
  query DeadLetters($consumer: String) {
    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }
  }
`);

const ReplayDeadLetter = graphql(`
  mutation ReplayDeadLetter($id: ID!) {
    replayDeadLetter(id: $id) { id replayedAt }
  }
`);

describe("dead letters", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService;
  let down = true;

  /** An audit listener that cannot handle confirmations while it is "down". */
  const audit: Listener = {
    name: "audit",
    types: ["OrderStateChanged"],
    async handle(tx, event) {
      if (down && event.payload.to === "confirmed") throw new Error("audit store unavailable");
      await tx.execute(sql`insert into audit_log (event_id) values (${event.id})`);
    },
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const pg = await import("pg");
    const client = new pg.default.Client({ connectionString: db.url });
    await client.connect();
    await client.query("create table audit_log (event_id uuid not null)");
    await client.end();
    app = await startTestService({
      databaseUrl: db.url,
      natsPrefix: prefix,
      listeners: [audit],
      retry: { maxAttempts: 2, backoffMs: () => 20 },
    });
  });

  afterAll(async () => {
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("are listed for an admin and replayed to the listener that gave up, and to no one else", async () => {
    const url = app.url!;
    const saga = sagaClient(url);
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(order.id, { status: "COMPLETED" });
    const admin = await tokens.admin();
    const [letter] = (
      await eventually(
        async () => {
          const data = await gqlData(url, DeadLetters, { consumer: "audit" }, admin);
          return data.deadLetters.length > 0 ? data : undefined;
        },
        { what: "the dead letter" },
      )
    ).deadLetters;
    expect(letter).toMatchObject({
      consumer: "audit",
      eventType: "OrderStateChanged",
      orderId: order.id,
      attempts: 2,
    });
    expect(letter!.error).toContain("audit store unavailable");
    expect(errorCode(await gql(url, DeadLetters, {}, await tokens.customer()))).toBe("FORBIDDEN");

    // A live subscriber must not see the replayed change a second time.
    const client = wsClient(url, await tokens.customer());
    const live: string[] = [];
    client.subscribe(
      { query: print(OrderStateChanged), variables: { orderId: order.id } },
      { next: ({ data }) => live.push(JSON.stringify(data)), error: () => {}, complete: () => {} },
    );
    await new Promise((r) => setTimeout(r, 200));

    down = false;
    const replayed = await gqlData(url, ReplayDeadLetter, { id: letter!.id }, admin);
    expect(replayed.replayDeadLetter.replayedAt).not.toBeNull();
    await eventually(
      async () => {
        const rows = await query<{ n: number }>(
          app.service.database.db,
          sql`select count(*)::int as n from audit_log where event_id = ${letter!.eventId}`,
        );
        return rows[0]!.n === 1;
      },
      { what: "the audit row" },
    );
    await new Promise((r) => setTimeout(r, 300));
    const after = await saga.read(order.id);
    expect(after.events.filter((e) => e.type === "InvoiceIssued")).toHaveLength(1);
    expect(after.events.filter((e) => e.type === "OrderStateChanged")).toHaveLength(4);
    expect(live, live.join()).toEqual([]);
    await client.dispose();

    expect(errorCode(await gql(url, ReplayDeadLetter, { id: letter!.id }, admin))).toBe("INVALID_TRANSITION");
    expect((await gqlData(url, DeadLetters, { consumer: "audit" }, admin)).deadLetters).toEqual([]);
  });
});
