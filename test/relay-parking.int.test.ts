import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BusEvent } from "../src/relay/bus.ts";
import { graphql } from "./generated/index.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import {
  deleteStream,
  errorCode,
  gql,
  gqlData,
  startTestService,
  type TestService,
  tokens,
} from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const ParkedEvents = graphql(`
  query ParkedEvents {
    parkedEvents { id type orderId error payloadBytes parkedAt }
  }
`);

const RepublishParkedEvent = graphql(`
  mutation RepublishParkedEvent($id: ID!) {
    republishParkedEvent(id: $id)
  }
`);

describe("an event JetStream refuses for good", () => {
  const prefix = testPrefix();
  const stream = `${prefix}_events`;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService;
  let sql: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestService({ databaseUrl: db.url, natsPrefix: prefix, roles: "gateway,relay" });
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  });

  afterAll(async () => {
    await sql?.end();
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  async function withStreams<T>(use: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>) {
    const nc = await connect({ servers: natsUrl });
    try {
      return await use(await jetstreamManager(nc));
    } finally {
      await nc.close();
    }
  }

  async function insert(orderId: string, type: string, payload: object = {}): Promise<string> {
    const id = randomUUID();
    await sql.query("insert into order_events (id, order_id, type, payload) values ($1, $2, $3, $4)", [
      id,
      orderId,
      type,
      JSON.stringify(payload),
    ]);
    await sql.query("select pg_notify('order_events', '')");
    return id;
  }

  async function published(ids: string[]): Promise<boolean> {
    const { rows } = await sql.query(
      "select count(*)::int as n from order_events where id = any($1) and published_at is not null",
      [ids],
    );
    return rows[0].n === ids.length;
  }

  async function gauge(): Promise<number | undefined> {
    const text = await (await fetch(app.url!.replace(/\/graphql$/, "/metrics"))).text();
    const match = /^orders_outbox_parked_events (\d+)/m.exec(text);
    return match ? Number(match[1]) : undefined;
  }

  it("is parked with its order's later events while the other orders flow, and goes out when republished", async () => {
    await withStreams((jsm) => jsm.streams.update(stream, { max_msg_size: 4_096 }));
    const x = randomUUID();
    const y = randomUUID();
    const big = await insert(x, "Bulky", { blob: "x".repeat(10_000) });
    const held = await insert(x, "AfterBulky");
    const others = [await insert(y, "Small"), await insert(y, "Small")];

    await eventually(() => published(others), { what: "the other order's events" });
    // And what is committed later flows too: nothing is stuck behind the refused row.
    const later = await insert(y, "Later");
    await eventually(() => published([later]), { what: "an event committed after the refusal" });

    const admin = await tokens.admin();
    const { parkedEvents } = await gqlData(app.url!, ParkedEvents, {}, admin);
    expect(parkedEvents.map((e) => e.id)).toEqual([big]);
    expect(parkedEvents[0]).toMatchObject({ type: "Bulky", orderId: x });
    expect(parkedEvents[0]!.error).toMatch(/size/i);
    expect(parkedEvents[0]!.payloadBytes).toBeGreaterThan(10_000);
    expect(errorCode(await gql(app.url!, ParkedEvents, {}, await tokens.customer()))).toBe("FORBIDDEN");
    expect(await published([held])).toBe(false);
    expect(await gauge()).toBe(1);

    // The cause fixed, an admin republishes it: it goes out, then the event that waited behind it.
    await withStreams((jsm) => jsm.streams.update(stream, { max_msg_size: -1 }));
    const answer = await gqlData(app.url!, RepublishParkedEvent, { id: big }, admin);
    expect(answer.republishParkedEvent).toBe(big);
    await eventually(() => published([big, held]), { what: "the parked event and the one it held" });
    const order = await withStreams(async (jsm) => {
      const ids: string[] = [];
      for (let seq = 1; ; ) {
        const next = { seq, next_by_subj: `${prefix}.events.*.${x}` } as unknown as { seq: number };
        const msg = await jsm.streams.getMessage(stream, next);
        if (!msg) return ids;
        ids.push(msg.json<BusEvent>().id);
        seq = msg.seq + 1;
      }
    });
    expect(order).toEqual([big, held]);
    expect(await gauge()).toBe(0);
    expect(errorCode(await gql(app.url!, RepublishParkedEvent, { id: big }, admin))).toBe("NOT_FOUND");
  });
});
