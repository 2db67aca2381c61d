import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import type { Bus, BusEvent, Delivery, Outcome } from "../src/relay/bus.ts";
import { InProcessBus } from "../src/relay/in-process-bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { natsUrl, testPrefix } from "./support/database.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

/**
 * What src/relay/bus.ts promises, run against both buses: JetStream on the
 * real NATS server, and the in-process bus of the embedded default. What only
 * JetStream can show (several processes, a consumer deleted on the server,
 * stray messages, a missing stream) stays in jetstream-bus.int.test.ts.
 */

const buses: Bus[] = [];
const prefixes: string[] = [];

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  await Promise.all(prefixes.map(deleteStream));
});

const implementations: { name: string; start(): Promise<Bus> }[] = [
  {
    name: "JetStreamBus on NATS",
    // Each test gets its own stream, so "from the first event ever published" means this test's events.
    start: async () => {
      const prefix = testPrefix();
      prefixes.push(prefix);
      const bus = new JetStreamBus({ url: natsUrl, prefix });
      buses.push(bus);
      await bus.start();
      return bus;
    },
  },
  {
    name: "InProcessBus",
    start: async () => {
      const bus = new InProcessBus();
      buses.push(bus);
      await bus.start();
      return bus;
    },
  },
];

function event(type = "OrderPlaced", orderId: string = randomUUID()): BusEvent {
  return {
    id: randomUUID(),
    type,
    orderId,
    occurredAt: new Date().toISOString(),
    payload: { note: "test", lines: [{ sku: "A", quantity: 2 }] },
  };
}

const done: Outcome = { kind: "done" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything a replay yields, in order. */
async function collect(deliveries: AsyncIterable<Delivery>): Promise<Delivery[]> {
  const all: Delivery[] = [];
  for await (const d of deliveries) all.push(d);
  return all;
}

const ids = (deliveries: Delivery[]) => deliveries.map((d) => d.event.id);

// Above eventually's 15s, so a missing event fails with its own message.
describe.each(implementations)("the bus contract: $name", { timeout: 30_000 }, ({ start }) => {
  it("answers each published event with its stream sequence, and a repeat with the first one", async () => {
    const bus = await start();
    expect(await bus.position()).toBe(0);
    const [a, b, c, d] = [event(), event(), event(), event()];
    expect(await bus.publish([a!, b!, c!])).toEqual([
      { ok: true, sequence: 1 },
      { ok: true, sequence: 2 },
      { ok: true, sequence: 3 },
    ]);
    // A relay that crashed between publishing and marking sends a again: it is not stored twice.
    expect(await bus.publish([d!, a!])).toEqual([
      { ok: true, sequence: 4 },
      { ok: true, sequence: 1 },
    ]);
    expect(await bus.position()).toBe(4);
  });

  it("publishes a dead-letter replay again under its own publication id", async () => {
    const bus = await start();
    const original = event();
    await bus.publish([original]);
    const replayed = { ...original, replay: 1, replayFor: ["finance"] };
    expect(await bus.publish([replayed])).toEqual([{ ok: true, sequence: 2 }]);
    expect(await bus.publish([replayed])).toEqual([{ ok: true, sequence: 2 }]);
    expect(await bus.eventAt(2)).toEqual(replayed);
  });

  it("looks up which events the stream holds, by publication id, with their sequences", async () => {
    const bus = await start();
    const order = randomUUID();
    const [a, b, unpublished] = [event("OrderPlaced", order), event("OrderConfirmed", order), event()];
    const other = event("OrderPlaced");
    await bus.publish([other, a!, b!]);
    const replayed = { ...a!, replay: 1 };
    await bus.publish([replayed]);

    const found = await bus.lookup([a!, b!, unpublished!, replayed]);
    expect(Object.fromEntries(found)).toEqual({ [a!.id]: 2, [b!.id]: 3, [`${a!.id}:replay-1`]: 4 });
    expect(await bus.lookup([])).toEqual(new Map());
  });

  it("holds each event at its position, and nothing outside them", async () => {
    const bus = await start();
    const [a, b] = [event(), event("OrderConfirmed")];
    await bus.publish([a!, b!]);
    expect(await bus.eventAt(1)).toEqual(a);
    expect(await bus.eventAt(2)).toEqual(b);
    expect(await bus.eventAt(0)).toBeUndefined();
    expect(await bus.eventAt(3)).toBeUndefined();
  });

  it("lets a consumer created late catch up from the first event, in publish order, once each", async () => {
    const bus = await start();
    const first = Array.from({ length: 20 }, () => event());
    const second = Array.from({ length: 5 }, () => event("OrderConfirmed"));
    await bus.publish(first);
    await bus.publish([...second, first[3]!]);
    const published = [...first, ...second].map((e) => e.id);

    const deliveries: Delivery[] = [];
    const consumption = await bus.consume({
      name: "late",
      handle: async (d) => {
        deliveries.push(d);
        return done;
      },
    });
    await eventually(() => deliveries.length >= published.length, { what: "every event" });
    // The repeat of first[3] would come after the last event, if it were stored: give it the time to.
    const extra = event();
    await bus.publish([extra]);
    await eventually(() => deliveries.some((d) => d.event.id === extra.id), { what: "the last event" });
    await consumption.stop();

    expect(ids(deliveries)).toEqual([...published, extra.id]);
    expect(deliveries.map((d) => d.sequence)).toEqual([...published, extra.id].map((_, i) => i + 1));
    expect(deliveries.every((d) => d.attempt === 1)).toBe(true);
    expect(deliveries[0]?.event).toEqual(first[0]);
  });

  it("delivers again after a retry outcome or a throw, with the next attempt and the same sequence", async () => {
    const bus = await start();
    const [calm, retried, thrown] = [event(), event(), event()];
    await bus.publish([retried!, thrown!, calm!]);

    const deliveries: Delivery[] = [];
    const consumption = await bus.consume({
      name: "retry",
      concurrency: 3,
      handle: async (d) => {
        deliveries.push(d);
        if (d.event.id === retried!.id && d.attempt < 3) return { kind: "retry", delayMs: 50 };
        if (d.event.id === thrown!.id && d.attempt === 1) throw new Error("handler failed");
        return done;
      },
    });
    const of = (e: BusEvent) => deliveries.filter((d) => d.event.id === e.id);
    await eventually(() => of(retried!).length >= 3 && of(thrown!).length >= 2, { what: "the redeliveries" });
    // Acknowledged ones do not come again.
    await sleep(1_500);
    await consumption.stop();

    expect(of(retried!).map((d) => [d.attempt, d.sequence])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
    expect(of(thrown!).map((d) => [d.attempt, d.sequence])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    expect(of(calm!).map((d) => [d.attempt, d.sequence])).toEqual([[1, 3]]);
  });

  it("holds at most `concurrency` deliveries in flight, and does not wait for a retry to go on", async () => {
    const bus = await start();
    const events = Array.from({ length: 8 }, () => event());
    await bus.publish(events);
    let inFlight = 0;
    let most = 0;
    const handled: string[] = [];
    const consumption = await bus.consume({
      name: "bounded",
      concurrency: 2,
      handle: async (d) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await sleep(20);
        inFlight--;
        // The first event is refused for a long while: the others must not wait behind it.
        if (d.event.id === events[0]!.id && d.attempt === 1) return { kind: "retry", delayMs: 60_000 };
        handled.push(d.event.id);
        return done;
      },
    });
    await eventually(() => handled.length >= events.length - 1, { what: "the events behind the retry" });
    await consumption.stop();
    expect(most).toBe(2);
    expect(handled.sort()).toEqual(
      events
        .slice(1)
        .map((e) => e.id)
        .sort(),
    );
  });

  it("stop() waits for the handler in flight", async () => {
    const bus = await start();
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    let finished = 0;
    // A free slot left, so only stop() itself can be the one waiting for the handler.
    const consumption = await bus.consume({
      name: "slow",
      concurrency: 2,
      handle: async () => {
        started++;
        await gate;
        finished++;
        return done;
      },
    });
    await bus.publish([event()]);
    await eventually(() => started === 1, { what: "the handler" });

    let stopped = false;
    const stopping = consumption.stop().then(() => {
      stopped = true;
    });
    await sleep(100);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(1);
  });

  it("hands a batch consumer what is waiting, in publish order, at most batchSize at a time, one batch at a time", async () => {
    const bus = await start();
    const events = Array.from({ length: 10 }, () => event());
    await bus.publish(events);
    const batches: Delivery[][] = [];
    let inFlight = 0;
    let most = 0;
    const consumption = await bus.consume({
      name: "batches",
      batchSize: 4,
      handleBatch: async (deliveries) => {
        inFlight++;
        most = Math.max(most, inFlight);
        batches.push(deliveries);
        await sleep(20);
        inFlight--;
        return deliveries.map(() => done);
      },
    });
    await eventually(() => batches.flat().length >= events.length, { what: "every event" });
    // One more, alone: it is handed over at once, not held back until a batch fills.
    const lone = event();
    await bus.publish([lone]);
    await eventually(() => batches.flat().some((d) => d.event.id === lone.id), { what: "the lone event" });
    await sleep(200);
    await consumption.stop();

    expect(most).toBe(1);
    expect(batches.every((b) => b.length >= 1 && b.length <= 4)).toBe(true);
    expect(batches.length).toBeLessThan(events.length + 1);
    expect(ids(batches.flat())).toEqual([...events, lone].map((e) => e.id));
    expect(batches.flat().map((d) => d.sequence)).toEqual([...events, lone].map((_, i) => i + 1));
    expect(ids(batches.at(-1)!)).toEqual([lone.id]);
  });

  it("lets a gathering consumer's first delivery wait gatherMs, so events published apart come in one batch", async () => {
    const bus = await start();
    const batches: Delivery[][] = [];
    const consumption = await bus.consume({
      name: "gathering",
      gatherMs: 400,
      handleBatch: async (deliveries) => {
        batches.push(deliveries);
        return deliveries.map(() => done);
      },
    });
    const [first, second] = [event(), event()];
    await bus.publish([first!]);
    // Well inside the gathering window, and far longer than a delivery takes without it.
    await sleep(100);
    await bus.publish([second!]);
    await eventually(() => batches.flat().length >= 2, { what: "both events" });
    await consumption.stop();

    expect(batches.map(ids)).toEqual([[first!.id, second!.id]]);
  });

  it("stops, within its gathering wait, a gathering consumer whose next batch is full", async () => {
    const bus = await start();
    await bus.publish(Array.from({ length: 6 }, () => event()));
    const handled: Delivery[] = [];
    // The first batch gathers while the test stops the consumer: the events sit in the client, the next
    // batch full, a delivery waiting for room. Stopping empties the batch; the delivery must not wait on.
    const gathering = await bus.consume({
      name: "stopped-full",
      batchSize: 2,
      gatherMs: 3_000,
      handleBatch: async (deliveries) => {
        handled.push(...deliveries);
        return deliveries.map(() => done);
      },
    });
    await sleep(300);
    const stopped = await Promise.race([
      gathering.stop().then(() => "stopped"),
      sleep(6_000).then(() => "still stopping"),
    ]);
    expect(stopped).toBe("stopped");
    expect(handled).toHaveLength(0);
  });

  it("delivers again, with the next attempt, only the deliveries of a batch answered retry, or all of a batch that threw", async () => {
    const bus = await start();
    const [calm, retried, other] = [event(), event(), event()];
    await bus.publish([calm!, retried!, other!]);
    const deliveries: Delivery[] = [];
    let threw = false;
    const consumption = await bus.consume({
      name: "batch-retry",
      handleBatch: async (batch) => {
        deliveries.push(...batch);
        if (!threw) {
          threw = true;
          throw new Error("batch failed");
        }
        return batch.map((d) =>
          d.event.id === retried!.id && d.attempt < 3 ? { kind: "retry", delayMs: 50 } : done,
        );
      },
    });
    const of = (e: BusEvent) => deliveries.filter((d) => d.event.id === e.id);
    await eventually(() => of(retried!).length >= 3, { what: "the redeliveries" });
    await sleep(1_500);
    await consumption.stop();

    expect(of(retried!).map((d) => [d.attempt, d.sequence])).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    for (const [e, sequence] of [
      [calm!, 1],
      [other!, 3],
    ] as const)
      expect(of(e).map((d) => [d.attempt, d.sequence])).toEqual([
        [1, sequence],
        [2, sequence],
      ]);
  });

  it("stop() waits for the batch in flight", async () => {
    const bus = await start();
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    let finished = 0;
    const consumption = await bus.consume({
      name: "slow-batch",
      handleBatch: async (batch) => {
        started++;
        await gate;
        finished++;
        return batch.map(() => done);
      },
    });
    await bus.publish([event(), event()]);
    await eventually(() => started === 1, { what: "the batch" });
    let stopped = false;
    const stopping = consumption.stop().then(() => {
      stopped = true;
    });
    await sleep(100);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(1);
  });

  it("tails only later events of the given types, or the ones after a given sequence", async () => {
    const bus = await start();
    const old = [event("OrderPlaced"), event("OrderPlaced")];
    await bus.publish(old);

    const live: Delivery[] = [];
    const tail = await bus.tail({ types: ["OrderPlaced", "OrderConfirmed"] }, (d) => live.push(d));
    const placed = event("OrderPlaced");
    const invoiced = event("InvoiceIssued");
    const confirmed = event("OrderConfirmed");
    await bus.publish([placed, invoiced, confirmed]);
    await eventually(() => live.some((d) => d.event.id === confirmed.id), { what: "the live events" });
    expect(ids(live)).toEqual([placed.id, confirmed.id]);
    expect(live.map((d) => [d.attempt, d.sequence])).toEqual([
      [1, 3],
      [1, 5],
    ]);

    const after: Delivery[] = [];
    const resumed = await bus.tail({ types: ["OrderPlaced", "OrderConfirmed"], afterSequence: 3 }, (d) =>
      after.push(d),
    );
    // One type (JetStream filters it by subject on the server) from the very start.
    const placedOnly: Delivery[] = [];
    const fromStart = await bus.tail({ types: ["OrderPlaced"], afterSequence: 0 }, (d) => placedOnly.push(d));
    const nothing: Delivery[] = [];
    const noTypes = await bus.tail({ types: [], afterSequence: 0 }, (d) => nothing.push(d));
    await eventually(() => after.length >= 1, { what: "the resumed tail" });
    await eventually(() => placedOnly.some((d) => d.event.id === placed.id), {
      what: "the placed-only tail",
    });

    // A stopped tail gets nothing more; the others go on.
    await tail.stop();
    const later = event("OrderConfirmed");
    await bus.publish([later]);
    await eventually(() => after.some((d) => d.event.id === later.id), { what: "the later event" });
    await Promise.all([resumed.stop(), fromStart.stop(), noTypes.stop()]);

    expect(ids(live)).toEqual([placed.id, confirmed.id]);
    expect(ids(after)).toEqual([confirmed.id, later.id]);
    expect(after.map((d) => d.sequence)).toEqual([5, 6]);
    expect(ids(placedOnly)).toEqual([...old.map((e) => e.id), placed.id]);
    expect(nothing).toEqual([]);
  });

  it("replays the events between two sequences, filtered by type and order, a page at a time", async () => {
    const bus = await start();
    const order = randomUUID();
    const events = [
      event("OrderPlaced", order), // 1
      event("OrderPlaced"), // 2
      event("OrderConfirmed", order), // 3
      event("InvoiceIssued", order), // 4
      event("OrderStateChanged", order), // 5
      event("OrderConfirmed"), // 6
      event("OrderStateChanged", order), // 7
      event("OrderPlaced", order), // 8
    ];
    await bus.publish(events);
    const seqs = (ds: Delivery[]) => ds.map((d) => d.sequence);
    const types = ["OrderPlaced", "OrderConfirmed"];

    const between = await collect(bus.replay({ types, afterSequence: 1, untilSequence: 6, pageSize: 2 }));
    expect(seqs(between)).toEqual([2, 3, 6]);
    expect(between.map((d) => d.event)).toEqual([events[1], events[2], events[5]]);
    expect(between.every((d) => d.attempt === 1)).toBe(true);

    const ofOrder = await collect(bus.replay({ types, orderId: order, afterSequence: 0, untilSequence: 8 }));
    expect(seqs(ofOrder)).toEqual([1, 3, 8]);
    const oneType = await collect(
      bus.replay({ types: ["OrderStateChanged"], orderId: order, afterSequence: 0, untilSequence: 6 }),
    );
    expect(seqs(oneType)).toEqual([5]);
    expect(await collect(bus.replay({ types, afterSequence: 6, untilSequence: 6 }))).toEqual([]);
    expect(await collect(bus.replay({ types: ["InvoicePaid"], afterSequence: 0, untilSequence: 8 }))).toEqual(
      [],
    );
  });

  it("answers ping while open, and refuses it once closed, however often it is closed", async () => {
    const bus = await start();
    await bus.ping();
    await bus.close();
    await bus.close();
    await expect(bus.ping()).rejects.toThrow(/closed/);
  });
});
