import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import type { BusEvent, Delivery, Outcome } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

const buses: JetStreamBus[] = [];
const streams = new Set<string>();

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for (const stream of streams) await jsm.streams.delete(stream).catch(() => {});
  await nc.close();
});

/** Each test gets its own stream, so "from the first event ever published" means this test's events. */
function newPrefix(): string {
  const prefix = `t_${randomUUID().slice(0, 8)}`;
  streams.add(`${prefix}_events`);
  return prefix;
}

const errors: object[] = [];
const logger = { info() {}, warn() {}, error: (obj: object) => void errors.push(obj) };

async function startBus(prefix: string): Promise<JetStreamBus> {
  const bus = new JetStreamBus({ url, prefix, logger });
  buses.push(bus);
  await bus.start();
  return bus;
}

function event(type = "OrderPlaced"): BusEvent {
  return {
    id: randomUUID(),
    type,
    orderId: randomUUID(),
    occurredAt: new Date().toISOString(),
    payload: { note: "test" },
  };
}

const done: Outcome = { kind: "done" };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// What the contract cannot show: several processes, the server's side of things, stray messages.
// The behaviour both buses share is in bus-contract.int.test.ts.
// Above waitFor's 10s, so a missing event fails with its own message.
describe("JetStreamBus", { timeout: 20_000 }, () => {
  it("shares a durable consumer between two processes, each event done by exactly one", async () => {
    const prefix = newPrefix();
    const [one, two] = await Promise.all([startBus(prefix), startBus(prefix)]);
    const doneBy = new Map<string, string[]>();
    const spec = (who: string) => ({
      name: "shared",
      concurrency: 2,
      handle: async (d: Delivery): Promise<Outcome> => {
        await sleep(5);
        doneBy.set(d.event.id, [...(doneBy.get(d.event.id) ?? []), who]);
        return done;
      },
    });
    // Both create the consumer at the same moment, as two processes starting together would.
    const consumptions = await Promise.all([one!.consume(spec("one")), two!.consume(spec("two"))]);
    const events = Array.from({ length: 60 }, () => event());
    await one!.publish(events);

    await waitFor("every event", () => doneBy.size >= events.length);
    await Promise.all(consumptions.map((c) => c.stop()));

    expect([...doneBy.keys()].sort()).toEqual(events.map((e) => e.id).sort());
    const handlers = [...doneBy.values()];
    expect(handlers.filter((h) => h.length !== 1)).toEqual([]);
    expect(handlers.some((h) => h[0] === "one")).toBe(true);
    expect(handlers.some((h) => h[0] === "two")).toBe(true);
  });

  it("deletes its tail consumers on the server when they stop", async () => {
    const prefix = newPrefix();
    const bus = await startBus(prefix);
    const seen: Delivery[] = [];
    // Several types and one type: filtered on the client and by subject on the server.
    const tails = await Promise.all([
      bus.tail({ types: ["OrderPlaced", "OrderConfirmed"] }, (d) => seen.push(d)),
      bus.tail({ types: ["OrderPlaced"], afterSequence: 0 }, (d) => seen.push(d)),
    ]);
    await bus.publish([event("OrderPlaced")]);
    await waitFor("both tails", () => seen.length >= 2);
    const nc = await connect({ servers: url });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.consumers.list(`${prefix}_events`).next()).length).toBe(2);

    await Promise.all(tails.map((t) => t.stop()));
    // The server would drop them only after 5 minutes idle; one tail per live subscription adds up.
    await waitFor(
      "the tail consumers to go",
      async () => (await jsm.consumers.list(`${prefix}_events`).next()).length === 0,
    );
    await nc.close();
  });

  it("stop() hands nothing more to the handler", async () => {
    const prefix = newPrefix();
    const bus = await startBus(prefix);
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handled: string[] = [];
    const consumption = await bus.consume({
      name: "buffered",
      concurrency: 2,
      handle: async (d) => {
        handled.push(d.event.id);
        await gate;
        return done;
      },
    });
    const events = [event(), event(), event()];
    await bus.publish(events);
    // Both slots busy; the third event is at most in the client's buffer.
    await waitFor("two handlers", () => handled.length === 2);
    // It is there once the server has sent it: under load the client's pull for it may come late, and a
    // message sent to a consumer already stopped can only come back after ack_wait.
    const nc = await connect({ servers: url });
    const jsm = await jetstreamManager(nc);
    await waitFor(
      "the third event to be pulled",
      async () => (await jsm.consumers.info(`${prefix}_events`, `${prefix}_buffered`)).num_ack_pending === 3,
    );
    await nc.close();
    await sleep(50);
    const stopping = consumption.stop();
    release();
    await stopping;
    expect(handled).toEqual(events.slice(0, 2).map((e) => e.id));

    // Handed back rather than left to ack_wait (30s), so the next consumer of that name gets it at once.
    const again: Delivery[] = [];
    const next = await bus.consume({
      name: "buffered",
      handle: async (d) => {
        again.push(d);
        return done;
      },
    });
    await waitFor("the third event", () => again.length >= 1);
    await next.stop();
    expect(again.map((d) => d.event.id)).toEqual([events[2]!.id]);
  });

  it("re-creates its consumer when it is deleted from under it", async () => {
    const prefix = newPrefix();
    const bus = await startBus(prefix);
    const seen: string[] = [];
    const consumption = await bus.consume({
      name: "phoenix",
      handle: async (d) => {
        seen.push(d.event.id);
        return done;
      },
    });
    const before = event();
    await bus.publish([before]);
    await waitFor("the first event", () => seen.includes(before.id));

    const nc = await connect({ servers: url });
    await (await jetstreamManager(nc)).consumers.delete(`${prefix}_events`, `${prefix}_phoenix`);
    await nc.close();
    const after = event();
    await bus.publish([after]);
    await waitFor("the event after the deletion", () => seen.includes(after.id));
    await consumption.stop();
    // The new consumer starts from the first event again: at least once.
    expect(seen).toEqual([before.id, before.id, after.id]);
  });

  it("terminates a message that is not JSON and goes on with the next", async () => {
    const prefix = newPrefix();
    const bus = await startBus(prefix);
    const nc = await connect({ servers: url });
    nc.publish(`${prefix}.events.Broken.x`, "not json");
    await nc.flush();
    await nc.close();
    const good = event();
    await bus.publish([good]);

    const seen: string[] = [];
    const before = errors.length;
    const consumption = await bus.consume({
      name: "poison",
      handle: async (d) => {
        seen.push(d.event.id);
        return done;
      },
    });
    await waitFor("the good event", () => seen.length >= 1);
    await consumption.stop();
    expect(seen).toEqual([good.id]);
    expect(errors.length).toBeGreaterThan(before);
    // Terminated, not handed back: nothing waits for an ack and nothing was redelivered.
    const nc2 = await connect({ servers: url });
    const info = await (await jetstreamManager(nc2)).consumers.info(`${prefix}_events`, `${prefix}_poison`);
    await nc2.close();
    expect({ pending: info.num_ack_pending, redelivered: info.num_redelivered }).toEqual({
      pending: 0,
      redelivered: 0,
    });
  });

  it("closes promptly while consuming, after the handler in flight, idempotently", async () => {
    const bus = await startBus(newPrefix());
    await bus.ping();
    let started = 0;
    let finished = 0;
    await bus.consume({
      name: "closing",
      handle: async (d) => {
        started++;
        if (d.event.type === "Slow") await sleep(200);
        finished++;
        return done;
      },
    });
    await bus.publish([event()]);
    await waitFor("the first event", () => finished === 1);
    await bus.publish([event("Slow")]);
    await waitFor("the slow handler", () => started === 2);

    // A pull request waits at the server for 30s: close must not wait for it, only for the handler.
    const startedAt = Date.now();
    await bus.close();
    expect(Date.now() - startedAt).toBeLessThan(2_000);
    expect(finished).toBe(2);
    await bus.close();
    await expect(bus.ping()).rejects.toThrow("closed");
  });

  it("answers a refusal for each event that JetStream does not acknowledge, to be retried", async () => {
    const prefix = newPrefix();
    const bus = await startBus(prefix);
    const nc = await connect({ servers: url });
    await (await jetstreamManager(nc)).streams.delete(`${prefix}_events`);
    await nc.close();
    // No stream listens on the subject any more, so nothing can acknowledge.
    const answers = await bus.publish([event(), event()]);
    expect(answers.map((a) => a.ok || a.lasting)).toEqual([false, false]);
  });

  it("rejects ping before start", async () => {
    const bus = new JetStreamBus({ url, prefix: newPrefix() });
    await expect(bus.ping()).rejects.toThrow("not started");
  });
});
