import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { OrderFeed, type OrderStateChange } from "../src/feed/order-feed.ts";
import { OrderVersions } from "../src/feed/order-versions.ts";
import { createLogger } from "../src/log.ts";
import { InProcessBus } from "../src/relay/in-process-bus.ts";
import { orderStatuses, transitions } from "../src/statemachine/states.ts";

function change(orderId: string, to: string, customerId = "c") {
  return {
    id: randomUUID(),
    type: "OrderStateChanged",
    orderId,
    occurredAt: new Date().toISOString(),
    payload: { from: null, to, customerId },
  };
}

/** What a subscription has waiting, without waiting for more. */
async function waiting(changes: AsyncIterableIterator<OrderStateChange>): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const next = await Promise.race([
      changes.next(),
      new Promise<"none">((r) => setImmediate(() => r("none"))),
    ]);
    if (next === "none" || next.done) return seen;
    seen.push(`${next.value.orderId}:${next.value.to}`);
  }
}

/** The feed on the in-process bus: the same contract the JetStream tests exercise end to end. */
describe("the order feed", () => {
  it("cuts off a subscriber that does not read, instead of holding its changes without bound", async () => {
    const bus = new InProcessBus();
    const feed = new OrderFeed(bus, createLogger("silent"), { buffer: 3 });
    await feed.start();
    const slow = feed.subscribe({}, "slow");
    const order = randomUUID();
    await bus.publish(
      ["confirmed", "fulfilling", "completed", "cancelled", "pending"].map((to) => change(order, to)),
    );
    expect(feed.subscriberCount).toBe(0);
    const read: string[] = [];
    await expect(async () => {
      for await (const c of slow) read.push(c.to);
    }).rejects.toThrow(/too slow/);
    // What it had room for, then the error: the client resumes with `after` from the last one.
    expect(read).toEqual(["confirmed", "fulfilling", "completed"]);
  });

  it("replays the history after a position, then the live changes, without a gap or a repeat", async () => {
    const bus = new InProcessBus();
    const feed = new OrderFeed(bus, createLogger("silent"));
    const order = randomUUID();
    await bus.publish([change(order, "pending"), change(order, "confirmed")]);
    await feed.start();
    await bus.publish([change(order, "fulfilling")]);
    const resumed = feed.resume(1, {});
    const seen: OrderStateChange[] = [];
    const reading = (async () => {
      for await (const c of resumed) {
        seen.push(c);
        if (seen.length === 3) break;
      }
    })();
    await bus.publish([change(order, "completed")]);
    await reading;
    expect(seen.map((c) => [c.sequence, c.to])).toEqual([
      [2, "confirmed"],
      [3, "fulfilling"],
      [4, "completed"],
    ]);
    expect(feed.subscriberCount).toBe(0);
  });

  it("hands a change to its order's, its customer's and the all-orders subscribers, and to no one else", async () => {
    const bus = new InProcessBus();
    const feed = new OrderFeed(bus, createLogger("silent"));
    await feed.start();
    const [a1, a2, b1] = ["a1", "a2", "b1"];
    const orderA1 = feed.subscribe({ orderId: a1 });
    const customerA = feed.subscribe({ customerId: "a" });
    // A customer naming another customer's order (the schema refuses it first) still gets nothing of it.
    const a1AsCustomerB = feed.subscribe({ orderId: a1, customerId: "b" });
    const everyOrder = feed.subscribe({});
    expect(feed.subscriberCount).toBe(4);
    await bus.publish([change(a1, "pending", "a"), change(a2, "pending", "a"), change(b1, "pending", "b")]);
    expect(await waiting(orderA1)).toEqual(["a1:pending"]);
    expect(await waiting(customerA)).toEqual(["a1:pending", "a2:pending"]);
    expect(await waiting(a1AsCustomerB)).toEqual([]);
    expect(await waiting(everyOrder)).toEqual(["a1:pending", "a2:pending", "b1:pending"]);
    for (const s of [orderA1, customerA, a1AsCustomerB, everyOrder]) await s.return?.();
    expect(feed.subscriberCount).toBe(0);
  });

  it("counts a subscriber cut off for being slow free once, when its client also returns it", async () => {
    const bus = new InProcessBus();
    const feed = new OrderFeed(bus, createLogger("silent"), { buffer: 1, perCaller: 2 });
    await feed.start();
    const slow = feed.subscribe({}, "c1");
    const other = feed.subscribe({ orderId: "x" }, "c1");
    await bus.publish([change("o", "pending"), change("o", "confirmed")]);
    await slow.return?.();
    // One cut-off subscription and one live one: room for one more, not two.
    expect(() => feed.subscribe({}, "c1")).not.toThrow();
    expect(() => feed.subscribe({}, "c1")).toThrow(/at most 2/);
    await other.return?.();
  });

  it("refuses a caller's subscription past the limit, and counts it free again when it ends", async () => {
    const feed = new OrderFeed(new InProcessBus(), createLogger("silent"), { perCaller: 1 });
    await feed.start();
    const first = feed.subscribe({}, "c1");
    expect(() => feed.subscribe({}, "c1")).toThrow(/at most 1/);
    expect(() => feed.subscribe({}, "c2")).not.toThrow();
    await first.return?.();
    expect(() => feed.subscribe({}, "c1")).not.toThrow();
  });

  it("hands on once a change the stream holds twice, live and on resume, in order", async () => {
    const bus = new InProcessBus();
    const feed = new OrderFeed(bus, createLogger("silent"));
    await feed.start();
    const live = feed.subscribe({});
    const order = randomUUID();
    const confirmed = change(order, "confirmed");
    // A copy under another id: the in-process bus drops a repeat of the same id, as JetStream does in its window.
    await bus.publish([change(order, "pending"), confirmed, { ...confirmed, id: randomUUID() }]);
    await bus.publish([change(order, "fulfilling"), { ...confirmed, id: randomUUID() }]);
    await bus.publish([change(order, "completed")]);
    const read = async (changes: AsyncIterableIterator<OrderStateChange>, n: number) => {
      const seen: string[] = [];
      for await (const c of changes) {
        seen.push(c.to);
        if (seen.length === n) break;
      }
      return seen;
    };
    expect(await read(live, 4)).toEqual(["pending", "confirmed", "fulfilling", "completed"]);
    const resumed = feed.resume(0, {});
    await bus.publish([change(order, "completed"), change(randomUUID(), "pending")]);
    expect(await read(resumed, 5)).toEqual(["pending", "confirmed", "fulfilling", "completed", "pending"]);
  });

  it("resumes from what the client saw of each order, so a copy of an older change is not handed on", async () => {
    const bus = new InProcessBus();
    const feed = new OrderFeed(bus, createLogger("silent"));
    const order = randomUUID();
    const confirmed = change(order, "confirmed");
    await bus.publish([change(order, "pending"), confirmed, change(order, "fulfilling")]);
    await bus.publish([{ ...confirmed, id: randomUUID() }, change(order, "completed")]);
    await feed.start();
    // The client saw up to FULFILLING (position 3); the stream's copy of CONFIRMED comes after it.
    const resumed = feed.resume(3, {}, { statusAt: async () => "fulfilling" });
    const seen: string[] = [];
    for await (const c of resumed) {
      seen.push(c.to);
      break;
    }
    expect(seen).toEqual(["completed"]);
  });

  it("ranks the shared states in the order the transitions move them, the premise of dropping a repeat", () => {
    for (const t of transitions)
      expect(orderStatuses.indexOf(t.to)).toBeGreaterThan(orderStatuses.indexOf(t.from));
    expect(orderStatuses[0]).toBe("pending");
  });

  it("remembers a bounded number of orders, forgetting the one changed longest ago", () => {
    const versions = new OrderVersions(2);
    expect(versions.advance("a", "pending")).toBe(true);
    expect(versions.advance("b", "pending")).toBe(true);
    expect(versions.advance("a", "confirmed")).toBe(true);
    expect(versions.advance("c", "pending")).toBe(true);
    expect(versions.has("b")).toBe(false);
    expect(versions.advance("a", "confirmed")).toBe(false);
    expect(versions.advance("a", "pending")).toBe(false);
    expect(versions.advance("c", "pending")).toBe(false);
  });
});
