import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BusEvent, ConsumerSpec, Delivery } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { type NatsLine, type NatsServer, natsServerOf } from "./support/private-nats.ts";
import { eventually } from "./support/wait.ts";

const logger = { info() {}, warn() {}, error() {} };

function event(type: string): BusEvent {
  return { id: randomUUID(), type, orderId: randomUUID(), occurredAt: new Date().toISOString(), payload: {} };
}

/** Three of each of A, B and C, interleaved as an order's events are. */
const mixed = () => [1, 2, 3].flatMap(() => ["A", "B", "C"].map(event));

/** A consumer that records what it is given and acknowledges everything. */
function recording(name: string, types?: string[]) {
  const got: Delivery[] = [];
  const spec: ConsumerSpec = {
    name,
    types,
    concurrency: 4,
    handle: async (delivery) => {
      got.push(delivery);
      return { kind: "done" };
    },
  };
  return { spec, got, ids: () => got.map((d) => d.event.id) };
}

/** The same, taking its deliveries in batches, as the listeners do. */
function recordingBatches(name: string, types: string[]) {
  const got: Delivery[] = [];
  const spec: ConsumerSpec = {
    name,
    types,
    handleBatch: async (deliveries) => {
      got.push(...deliveries);
      return deliveries.map(() => ({ kind: "done" }));
    },
  };
  return { spec, got, ids: () => got.map((d) => d.event.id) };
}

const handledBy = (events: BusEvent[], types: string[]) =>
  events.filter((e) => types.includes(e.type)).map((e) => e.id);

function suite(line: NatsLine) {
  describe(`durable consumers' subject filters on nats-server ${line}`, () => {
    let server: NatsServer;
    const buses: JetStreamBus[] = [];
    const streams: string[] = [];
    const bus = async () => {
      if ("skip" in server) throw new Error(server.skip);
      const b = new JetStreamBus({ url: server.url, prefix: `t_${randomUUID().slice(0, 8)}`, logger });
      streams.push(b.stream);
      buses.push(b);
      await b.start();
      return b;
    };

    beforeAll(async () => {
      server = await natsServerOf(line);
    }, 30_000);
    afterAll(async () => {
      await Promise.all(buses.map((b) => b.close()));
      if ("skip" in server) return;
      // The machine's server is shared: leave no stream behind on it.
      const nc = await connect({ servers: server.url });
      const jsm = await jetstreamManager(nc);
      for (const stream of streams) await jsm.streams.delete(stream).catch(() => {});
      await nc.close();
      await server.stop();
    });

    it("gives each consumer every event of its types, once", async (ctx) => {
      if ("skip" in server) return ctx.skip(server.skip);
      const b = await bus();
      const events = mixed();
      await b.publish(events);
      const two = recording("two", ["A", "B"]);
      const one = recording("one", ["C"]);
      const all = recording("all");
      const batched = recordingBatches("batched", ["B"]);
      const runs = await Promise.all([two, one, all, batched].map((c) => b.consume(c.spec)));
      await eventually(() => all.got.length === events.length, { what: "every event to the catch-all" });
      await eventually(
        () =>
          handledBy(
            two.got.map((d) => d.event),
            ["A", "B"],
          ).length === 6,
        {
          what: "A and B to the two-type consumer",
        },
      );
      await eventually(() => one.got.length === 3, { what: "C to the one-type consumer" });
      await eventually(
        () =>
          handledBy(
            batched.got.map((d) => d.event),
            ["B"],
          ).length === 3,
        { what: "B to the batch consumer" },
      );
      await new Promise((r) => setTimeout(r, 300)); // anything else it would be given arrives meanwhile
      await Promise.all(runs.map((r) => r.stop()));

      expect(one.ids()).toEqual(handledBy(events, ["C"]));
      expect(
        new Set(
          handledBy(
            two.got.map((d) => d.event),
            ["A", "B"],
          ),
        ),
      ).toEqual(new Set(handledBy(events, ["A", "B"])));
      expect(all.got).toHaveLength(events.length);
      // Filtered by the server on 2.10; on 2.9 a consumer of two types gets every event and acks the others.
      expect(two.got).toHaveLength(line === "2.10" ? 6 : 9);
      // One type: filtered by the server on either line, in batches as one at a time.
      expect(batched.ids()).toEqual(handledBy(events, ["B"]));
    });

    it("narrows an existing consumer in place: nothing skipped, nothing handled twice", async (ctx) => {
      if ("skip" in server) return ctx.skip(server.skip);
      const b = await bus();
      const before = mixed();
      await b.publish(before);
      // As every durable consumer was made before it had types: every subject.
      const old = recording("module");
      let run = await b.consume(old.spec);
      await eventually(() => old.got.length === before.length, { what: "the old consumer to catch up" });
      await run.stop();
      const after = mixed();
      await b.publish(after);

      const narrowed = recording("module", ["A", "B"]);
      run = await b.consume(narrowed.spec);
      await eventually(
        () =>
          handledBy(
            narrowed.got.map((d) => d.event),
            ["A", "B"],
          ).length === 6,
        {
          what: "the events published since, of its types",
        },
      );
      await new Promise((r) => setTimeout(r, 300));
      await run.stop();

      const handled = handledBy(
        narrowed.got.map((d) => d.event),
        ["A", "B"],
      );
      expect(new Set(handled)).toEqual(new Set(handledBy(after, ["A", "B"])));
      expect(handled).toHaveLength(6);
      expect(narrowed.got).toHaveLength(line === "2.10" ? 6 : 9);
    });
  });
}

suite("2.10");
suite("2.9");
