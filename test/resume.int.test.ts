import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { sql } from "drizzle-orm";
import { print } from "graphql";
import { createClient } from "graphql-ws";
import { beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { query } from "../src/db/database.ts";
import type { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { natsUrl } from "./support/database.ts";
import { OrderStateChanged } from "./support/operations.ts";
import { sagaClient } from "./support/saga.ts";
import { liveSubscriptions, type TestService, tokenFor, tokens, useTestService } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

interface Change {
  eventId: string;
  orderId: string;
  from: string | null;
  to: string;
}

const lifecycle = [
  [null, "PENDING"],
  ["PENDING", "CONFIRMED"],
  ["CONFIRMED", "FULFILLING"],
  ["FULFILLING", "COMPLETED"],
];

/** A graphql-ws subscriber whose socket the test can cut, as a tunnel would. */
function subscriber(url: string, token: string, variables: { orderId?: string; after?: string }) {
  const sockets: WebSocket[] = [];
  class TrackedSocket extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      sockets.push(this);
    }
  }
  const changes: Change[] = [];
  let failure: unknown;
  const client = createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: TrackedSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  let ended = false;
  client.subscribe(
    { query: print(OrderStateChanged), variables },
    {
      next: ({ data, errors }) => {
        if (errors) failure = errors;
        else changes.push((data as { orderStateChanged: Change }).orderStateChanged);
      },
      error: (error) => {
        failure = error;
        ended = true;
      },
      complete: () => {
        ended = true;
      },
    },
  );
  return {
    changes,
    failure: () => failure,
    ended: () => ended,
    cut: () => {
      for (const socket of sockets) socket.terminate();
    },
    close: () => client.dispose(),
  };
}

function expectFullLifecycles(changes: Change[], orderIds: string[]) {
  expect(new Set(changes.map((c) => c.eventId)).size).toBe(changes.length);
  for (const id of orderIds) {
    expect(changes.filter((c) => c.orderId === id).map((c) => [c.from, c.to])).toEqual(lifecycle);
  }
}

describe("resumable subscriptions", () => {
  const service = useTestService();
  let app: TestService;
  let url: string;
  let saga: ReturnType<typeof sagaClient>;

  beforeAll(() => {
    ({ app, url } = service);
    saga = sagaClient(url);
  });

  it("misses nothing and repeats nothing when the socket is cut while 20 orders progress", async () => {
    const customer = await tokens.customer();
    const first = await saga.place(["EBOOK-1"]);
    const before = subscriber(url, customer, { after: undefined });
    await liveSubscriptions(url);

    const orders = [first];
    const work = (async () => {
      await saga.confirm(first);
      for (let i = 1; i < 20; i++) {
        const order = await saga.place(["EBOOK-1"]);
        orders.push(order);
        await saga.confirm(order);
      }
    })();
    await eventually(() => before.changes.length >= 10, { what: "the first changes" });
    before.cut();
    await eventually(() => before.ended(), { what: "the cut" });
    const seen = [...before.changes];
    await work;
    await new Promise((r) => setTimeout(r, 300));

    const after = subscriber(url, customer, { after: seen.at(-1)!.eventId });
    const ids = orders.map((o) => o.id);
    await eventually(
      () => {
        const all = [...seen, ...after.changes];
        return ids.every((id) => all.filter((c) => c.orderId === id && c.to === "COMPLETED").length > 0);
      },
      { what: "every order's completion" },
    );
    await new Promise((r) => setTimeout(r, 200));
    after.close();
    // The first order was placed just before the subscription began: its PENDING may or may not be live.
    const all = [...seen, ...after.changes];
    const firstChanges = all.filter((c) => c.orderId === first.id).map((c) => c.to);
    expect([
      ["PENDING", "CONFIRMED", "FULFILLING", "COMPLETED"],
      ["CONFIRMED", "FULFILLING", "COMPLETED"],
    ]).toContainEqual(firstChanges);
    expectFullLifecycles(all, ids.slice(1));
    expect(after.failure()).toBeUndefined();
  });

  it("delivers once each change committed while the replay is being read", async () => {
    const customer = await tokens.customer();
    const start = await saga.place(["EBOOK-1"]);
    const backlog = [start];
    for (let i = 0; i < 15; i++) backlog.push(await saga.placeAndConfirm(["EBOOK-1"]));
    await saga.confirm(start);
    await Promise.all(backlog.map((o) => saga.until(o.id, { status: "COMPLETED" })));

    const resumed = subscriber(url, customer, { after: await placementEventId(start.id) });
    // While the replay reads the backlog, more orders move.
    const during: { id: string; total: number }[] = [];
    for (let i = 0; i < 5; i++) during.push(await saga.placeAndConfirm(["EBOOK-1"]));
    const ids = [...backlog, ...during].map((o) => o.id);
    await eventually(
      () => ids.every((id) => resumed.changes.some((c) => c.orderId === id && c.to === "COMPLETED")),
      { what: "the backlog and the new orders" },
    );
    await new Promise((r) => setTimeout(r, 200));
    resumed.close();
    expect(resumed.failure()).toBeUndefined();
    expect(resumed.changes.filter((c) => c.orderId === start.id).map((c) => c.to)).toEqual([
      "CONFIRMED",
      "FULFILLING",
      "COMPLETED",
    ]);
    expectFullLifecycles(resumed.changes, ids.slice(1));
  });

  it("resumes over SSE from Last-Event-ID, as a browser's EventSource does", async () => {
    const customer = await tokens.customer();
    const order = await saga.place(["EBOOK-1"]);
    const query = encodeURIComponent(
      `subscription { orderStateChanged(orderId: "${order.id}") { eventId from to } }`,
    );
    const open = (lastEventId?: string) =>
      sseFrames(`${url}?query=${query}`, {
        authorization: `Bearer ${customer}`,
        accept: "text/event-stream",
        ...(lastEventId ? { "last-event-id": lastEventId } : {}),
      });

    // Resuming after the placement (the eventId placeOrder answered): the next change is the confirmation.
    const first = await open(await placementEventId(order.id));
    await saga.confirm(order);
    const early = await first.take(1);
    first.abort();
    expect(early[0]!.data.to).toBe("CONFIRMED");
    expect(early[0]!.id).toBe(early[0]!.data.eventId);
    await saga.until(order.id, { status: "COMPLETED" });

    const second = await open(early[0]!.id);
    const rest = await second.take(2);
    second.abort();
    expect(rest.map((f) => f.data.to)).toEqual(["FULFILLING", "COMPLETED"]);
    expect(rest.map((f) => f.id)).toEqual(rest.map((f) => f.data.eventId));
  });

  it("resumes one order at once when the stream holds nothing of it since `after`", async () => {
    const customer = await tokens.customer();
    const watcher = subscriber(url, customer, {});
    await liveSubscriptions(url);
    const mine = await saga.place(["EBOOK-1"]);
    // Another order's change after mine: the seam lies past the last change of mine.
    const other = await saga.place(["EBOOK-1"]);
    await eventually(() => watcher.changes.some((c) => c.orderId === other.id), { what: "the other order" });
    watcher.close();

    const started = performance.now();
    const resumed = subscriber(url, customer, { orderId: mine.id, after: await placementEventId(mine.id) });
    await saga.confirm(mine);
    await eventually(() => resumed.changes.length > 0, { what: "the confirmation" });
    const ms = performance.now() - started;
    resumed.close();
    expect(resumed.changes[0]!.to).toBe("CONFIRMED");
    // The replay used to wait for a fetch to come back empty (a second), unless a change of this order ended it.
    expect(ms).toBeLessThan(900);
  });

  it("answers BAD_USER_INPUT for an `after` the caller may not see, and reveals nothing", async () => {
    const mine = await saga.place(["EBOOK-1"]);
    const theirs = subscriber(url, await tokens.otherCustomer(), { after: await placementEventId(mine.id) });
    await eventually(() => theirs.ended() || theirs.failure() !== undefined, { what: "the refusal" });
    expect(JSON.stringify(theirs.failure())).toContain("BAD_USER_INPUT");
    expect(theirs.changes).toEqual([]);
    const unknown = subscriber(url, await tokens.customer(), { after: crypto.randomUUID() });
    await eventually(() => unknown.failure() !== undefined, { what: "the refusal" });
    expect(JSON.stringify(unknown.failure())).toContain("BAD_USER_INPUT");
  });

  it("hands on a change the stream holds twice once, live and on resume, in order", async () => {
    // A customer of its own: the copies below stay out of the other tests' streams of changes.
    const customer = await tokenFor({ role: "customer", id: "customer-twice" });
    const live = subscriber(url, customer, {});
    await liveSubscriptions(url);
    const doubled = await saga.place(["EBOOK-1"], customer);
    await saga.confirm(doubled);
    await saga.until(doubled.id, { status: "COMPLETED" });
    const changes = await stateChanges(doubled.id);
    expect(changes.map((c) => c.payload.to)).toEqual(["pending", "confirmed", "fulfilling", "completed"]);
    await eventually(() => live.changes.length === 4, { what: "the live changes" });

    // The relay publishes the batch again after JetStream's duplicate window: stored a second time.
    await publishAgain(changes);
    const next = await saga.place(["EBOOK-1"], customer);
    await saga.confirm(next);
    await saga.until(next.id, { status: "COMPLETED" });

    const fromPlacement = subscriber(url, customer, { after: changes[0]!.id });
    const fromCompletion = subscriber(url, customer, { after: changes[3]!.id });
    const all = [live, fromPlacement, fromCompletion];
    await eventually(
      () => all.every((s) => s.changes.some((c) => c.orderId === next.id && c.to === "COMPLETED")),
      { what: "the next order's completion everywhere" },
    );
    await new Promise((r) => setTimeout(r, 300));
    for (const s of all) s.close();
    const states = (s: ReturnType<typeof subscriber>, orderId: string) =>
      s.changes.filter((c) => c.orderId === orderId).map((c) => c.to);
    expect(states(live, doubled.id)).toEqual(["PENDING", "CONFIRMED", "FULFILLING", "COMPLETED"]);
    expect(states(fromPlacement, doubled.id)).toEqual(["CONFIRMED", "FULFILLING", "COMPLETED"]);
    expect(states(fromCompletion, doubled.id)).toEqual([]);
    for (const s of all) {
      expect(states(s, next.id)).toEqual(["PENDING", "CONFIRMED", "FULFILLING", "COMPLETED"]);
      expect(s.failure()).toBeUndefined();
    }
  });

  async function stateChanges(orderId: string) {
    return query<{ id: string; type: string; order_id: string; occurred_at: Date; payload: { to: string } }>(
      app.service.database.db,
      sql`select id, type, order_id, occurred_at, payload from order_events
          where order_id = ${orderId} and type = 'OrderStateChanged' order by seq`,
    );
  }

  /** Publishes the events on the service's stream again, each under a new message id. */
  async function publishAgain(rows: Awaited<ReturnType<typeof stateChanges>>) {
    const prefix = (app.service.bus as JetStreamBus).stream.replace(/_events$/, "");
    const nc = await connect({ servers: natsUrl });
    try {
      const js = jetstream(nc);
      for (const row of rows) {
        const event = {
          id: row.id,
          type: row.type,
          orderId: row.order_id,
          occurredAt: new Date(row.occurred_at).toISOString(),
          payload: row.payload,
        };
        await js.publish(`${prefix}.events.${row.type}.${row.order_id}`, JSON.stringify(event), {
          msgID: `${row.id}:again`,
        });
      }
    } finally {
      await nc.close();
    }
  }

  async function placementEventId(orderId: string): Promise<string> {
    // The OrderStateChanged of the placement: the eventId placeOrder answered.
    const [row] = await query<{ id: string }>(
      app.service.database.db,
      sql`select placed_event_id as id from sales_orders where id = ${orderId}`,
    );
    return row!.id;
  }
});

/** A minimal SSE reader: frames with their id and parsed data. */
async function sseFrames(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const frames: { id?: string; data: { eventId: string; from: string | null; to: string } }[] = [];
  return {
    async take(n: number) {
      while (frames.length < n) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = frame.split("\n");
          const data = lines.find((l) => l.startsWith("data: "));
          if (data && lines.includes("event: next")) {
            frames.push({
              id: lines.find((l) => l.startsWith("id: "))?.slice(4),
              data: JSON.parse(data.slice(6)).data.orderStateChanged,
            });
          }
          end = buffer.indexOf("\n\n");
        }
      }
      return frames.splice(0, n);
    },
    abort: () => controller.abort(),
  };
}
