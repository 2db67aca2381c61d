import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/log.ts";
import { InProcessBus } from "../src/relay/in-process-bus.ts";
import { OrderFeed, type OrderStateChange } from "../src/schema/order-feed.ts";

function change(orderId: string, to: string) {
  return {
    id: randomUUID(),
    type: "OrderStateChanged",
    orderId,
    occurredAt: new Date().toISOString(),
    payload: { from: null, to, customerId: "c" },
  };
}

/** The feed on the in-process bus: the same contract the JetStream tests exercise end to end. */
describe("the order feed", () => {
  it("cuts off a subscriber that does not read, instead of holding its changes without bound", async () => {
    const bus = new InProcessBus();
    const feed = new OrderFeed(bus, createLogger("silent"), { buffer: 3 });
    await feed.start();
    const slow = feed.subscribe(() => true, "slow");
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
    const resumed = feed.resume(1, () => true);
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

  it("refuses a caller's subscription past the limit, and counts it free again when it ends", async () => {
    const feed = new OrderFeed(new InProcessBus(), createLogger("silent"), { perCaller: 1 });
    await feed.start();
    const first = feed.subscribe(() => true, "c1");
    expect(() => feed.subscribe(() => true, "c1")).toThrow(/at most 1/);
    expect(() => feed.subscribe(() => true, "c2")).not.toThrow();
    await first.return?.();
    expect(() => feed.subscribe(() => true, "c1")).not.toThrow();
  });
});
