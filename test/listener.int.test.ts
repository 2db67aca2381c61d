import { randomUUID } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase, query } from "../src/db/database.ts";
import { createLogger } from "../src/log.ts";
import { finance } from "../src/modules/finance/index.ts";
import type { BusEvent, Consumption } from "../src/relay/bus.ts";
import { InProcessBus } from "../src/relay/in-process-bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import {
  deliver,
  deliverBatch,
  type EventListener,
  type Listener,
  type ListenerDeps,
  runListener,
} from "../src/relay/listener.ts";
import { deadLetters, listenerFailures, processedEvents } from "../src/relay/tables.ts";
import { moduleListener } from "../src/statemachine/module-listener.ts";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const logger = createLogger("silent");

function event(type: string): BusEvent {
  return { id: randomUUID(), type, orderId: randomUUID(), occurredAt: new Date().toISOString(), payload: {} };
}

describe("the listener runner", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let database: Database;
  let bus: JetStreamBus;
  const consumptions: Consumption[] = [];

  /** A listener whose effect is a row in `effects`: count the rows to count the effects. */
  const counting = (name: string, fail: (e: BusEvent) => boolean = () => false): EventListener => ({
    name,
    types: ["Something", "Fine", "Poison", "OrderConfirmed"],
    async handle(tx, e) {
      if (fail(e)) throw new Error(`cannot handle ${e.type}`);
      await tx.execute(sql`insert into effects (listener, event_id) values (${name}, ${e.id})`);
    },
  });

  const effects = async (name: string, eventId: string) =>
    (
      await query<{ n: number }>(
        database.db,
        sql`select count(*)::int as n from effects where listener = ${name} and event_id = ${eventId}`,
      )
    )[0]!.n;

  beforeAll(async () => {
    db = await createTestDatabase();
    database = await openDatabase({ url: db.url, dataDir: ".data/test" });
    await database.db.execute(sql`create table effects (listener text not null, event_id uuid not null)`);
    bus = new JetStreamBus({ url: natsUrl, prefix, logger });
    await bus.start();
  });

  afterAll(async () => {
    for (const c of consumptions) await c.stop();
    await bus?.close();
    await database?.close();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("applies a redelivered event once: the inbox row commits with the effect", async () => {
    const listener = counting("once");
    const deps: ListenerDeps = { db: database.db, bus, logger };
    const e = event("Something");
    await deliver(deps, listener, { event: e, attempt: 1, sequence: 1 });
    await deliver(deps, listener, { event: e, attempt: 2, sequence: 1 });
    expect(await effects("once", e.id)).toBe(1);
  });

  it("takes a listener's lock keys before its inbox row and its handler, and holds them to the commit", async () => {
    const e = event("Something");
    const locked = {
      ...counting("locking"),
      lockKeys: (events: BusEvent[]) => events.map((x) => `k:${x.orderId}`),
    };
    const deps: ListenerDeps = { db: database.db, bus, logger };
    // Another transaction holds the key: the delivery waits for it, inbox row and effect alike.
    const holder = await database.session();
    await holder.db.execute(sql`begin`);
    await holder.db.execute(sql`select pg_advisory_xact_lock(hashtext(${`k:${e.orderId}`}))`);
    let done = false;
    const delivering = deliverBatch(deps, locked, [
      { event: e, attempt: 1, sequence: 1 },
      { event: event("Fine"), attempt: 1, sequence: 2 },
    ]).then(() => {
      done = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(done).toBe(false);
    const inbox = await query<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from ${processedEvents} where consumer = 'locking'`,
    );
    expect(inbox[0]!.n).toBe(0);
    await holder.db.execute(sql`commit`);
    await delivering;
    expect(await effects("locking", e.id)).toBe(1);
    await holder.close();
  });

  it("over JetStream: an event whose ack was lost comes again and still has one effect", async () => {
    const listener = counting("lost-ack");
    const deps: ListenerDeps = { db: database.db, bus, logger };
    const attempts = new Map<string, number>();
    consumptions.push(
      await bus.consume({
        name: "lost-ack",
        handle: async (delivery) => {
          attempts.set(delivery.event.id, delivery.attempt);
          const outcome = await deliver(deps, listener, delivery);
          // As if the process died after committing and before acknowledging.
          return delivery.attempt === 1 ? { kind: "retry", delayMs: 10 } : outcome;
        },
      }),
    );
    const e = event("Something");
    await bus.publish([e]);
    await eventually(() => attempts.get(e.id) === 2, { what: "the redelivery" });
    expect(await effects("lost-ack", e.id)).toBe(1);
  });

  it("gives up on a poisoned event after the bounded tries, into dead_letters, while the events behind it go through", async () => {
    const listener = counting("poison", (e) => e.type === "Poison");
    const deps: ListenerDeps = {
      db: database.db,
      bus,
      logger,
      retry: { maxAttempts: 3, backoffMs: () => 200 },
    };
    consumptions.push(
      await bus.consume({
        name: "poison",
        concurrency: 1,
        handle: (delivery) => deliver(deps, listener, delivery),
      }),
    );
    const poison = event("Poison");
    const behind = Array.from({ length: 5 }, () => event("Fine"));
    await bus.publish([poison, ...behind]);

    // The events behind it are handled while the poisoned one still waits for its next try.
    await eventually(
      async () => {
        for (const e of behind) if ((await effects("poison", e.id)) !== 1) return false;
        return true;
      },
      { what: "the events behind the poisoned one" },
    );
    const early = await database.db.select().from(deadLetters).where(eq(deadLetters.eventId, poison.id));
    expect(early).toHaveLength(0);

    const [dead] = await eventually(
      async () => {
        const rows = await database.db.select().from(deadLetters).where(eq(deadLetters.eventId, poison.id));
        return rows.length > 0 ? rows : undefined;
      },
      { what: "the dead letter" },
    );
    expect(dead).toMatchObject({
      consumer: "poison",
      eventType: "Poison",
      attempts: 3,
      orderId: poison.orderId,
    });
    expect(dead!.error).toContain("cannot handle Poison");
    expect(await effects("poison", poison.id)).toBe(0);
    const inbox = await database.db
      .select()
      .from(processedEvents)
      .where(and(eq(processedEvents.consumer, "poison"), eq(processedEvents.eventId, poison.id)));
    expect(inbox).toHaveLength(0);
  });

  it("counts failed tries only: redeliveries from deploys do not use the tries up", async () => {
    const failedOnce = new Set<string>();
    // Healthy, but its first try meets a passing fault (a serialization failure, a deadlock).
    const listener = counting("restarts", (e) => {
      if (failedOnce.has(e.id)) return false;
      failedOnce.add(e.id);
      return true;
    });
    const deps: ListenerDeps = {
      db: database.db,
      bus,
      logger,
      retry: { maxAttempts: 3, backoffMs: () => 20 },
    };
    const attempts: number[] = [];
    consumptions.push(
      await bus.consume({
        name: "restarts",
        handle: async (delivery) => {
          attempts.push(delivery.attempt);
          // As a deploy does five times over: the process took the event and was stopped before it ran
          // the handler, so the bus got it back (a nak on stop, or ack_wait after a kill).
          if (delivery.attempt <= 5) return { kind: "retry", delayMs: 10 };
          return deliver(deps, listener, delivery);
        },
      }),
    );
    const e = event("Something");
    await bus.publish([e]);
    await eventually(async () => (await effects("restarts", e.id)) === 1, { what: "the event handled" });
    expect(attempts.at(-1)).toBeGreaterThan(deps.retry!.maxAttempts);
    const dead = await database.db.select().from(deadLetters).where(eq(deadLetters.eventId, e.id));
    expect(dead).toEqual([]);
  });

  it("gives up after the handler failed maxAttempts times, whatever the deliveries before", async () => {
    const listener = counting("failing", () => true);
    const deps: ListenerDeps = {
      db: database.db,
      bus,
      logger,
      retry: { maxAttempts: 4, backoffMs: () => 10 },
    };
    const e = event("Something");
    // Delivered as the 9th time (earlier deliveries were restarts): the first failure is only the first.
    const outcomes = [];
    for (let attempt = 9; attempt < 13; attempt++)
      outcomes.push((await deliver(deps, listener, { event: e, attempt, sequence: 1 })).kind);
    expect(outcomes).toEqual(["retry", "retry", "retry", "done"]);
    const [dead] = await database.db.select().from(deadLetters).where(eq(deadLetters.eventId, e.id));
    expect(dead).toMatchObject({ consumer: "failing", attempts: 4 });
    expect(dead!.error).toContain("cannot handle Something");
  });

  it("after giving up, a redelivery (a lost ack) adds no second dead letter, and handling the event settles it", async () => {
    let broken = true;
    const listener = counting("lost-dead-ack", () => broken);
    const deps: ListenerDeps = {
      db: database.db,
      bus,
      logger,
      retry: { maxAttempts: 2, backoffMs: () => 10 },
    };
    const e = event("Something");
    const letters = () => database.db.select().from(deadLetters).where(eq(deadLetters.eventId, e.id));
    for (let attempt = 1; attempt <= 2; attempt++)
      await deliver(deps, listener, { event: e, attempt, sequence: 1 });
    expect(await letters()).toHaveLength(1);

    expect(await deliver(deps, listener, { event: e, attempt: 3, sequence: 1 })).toEqual({ kind: "done" });
    expect(await letters()).toHaveLength(1);

    broken = false;
    await deliver(deps, listener, { event: e, attempt: 4, sequence: 1 });
    expect(await effects("lost-dead-ack", e.id)).toBe(1);
    const [letter] = await letters();
    expect(letter!.settledAt).not.toBeNull();
    expect(letter!.replayedAt).toBeNull();
    const counts = await database.db
      .select()
      .from(listenerFailures)
      .where(eq(listenerFailures.eventId, e.id));
    expect(counts).toEqual([]);
  });

  it("sends an event whose payload is not what its type says to dead_letters at once, naming the wrong field", async () => {
    const deps: ListenerDeps = { db: database.db, bus, logger };
    const e: BusEvent = {
      ...event("OrderConfirmed"),
      payload: {
        paymentReference: "psp-1",
        amount: "12.99",
        currency: "EUR",
        lines: [],
        involvedModules: [],
      },
    };
    const outcome = await deliver(deps, moduleListener(finance), { event: e, attempt: 1, sequence: 1 });
    expect(outcome).toEqual({ kind: "done" });
    const letters = await database.db.select().from(deadLetters).where(eq(deadLetters.eventId, e.id));
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ consumer: "finance", attempts: 1 });
    expect(letters[0]!.error).toBe('MalformedEvent: OrderConfirmed.amount should be an integer, not "12.99"');
  });

  it("acknowledges events it does not handle without a transaction or an inbox row", async () => {
    const deps: ListenerDeps = { db: database.db, bus, logger };
    const e = event("Ignored");
    expect(await deliver(deps, counting("ignoring"), { event: e, attempt: 1, sequence: 1 })).toEqual({
      kind: "done",
    });
    const inbox = await database.db.select().from(processedEvents).where(eq(processedEvents.eventId, e.id));
    expect(inbox).toHaveLength(0);
  });

  it("skips a first delivery its listener says has nothing for it, without an inbox row; handles one that came before", async () => {
    const deps: ListenerDeps = { db: database.db, bus, logger };
    const skipping: Listener = { ...counting("skipping"), skips: (e) => e.payload.skip === true };
    const skipped = { ...event("Fine"), payload: { skip: true } };
    await deliver(deps, skipping, { event: skipped, attempt: 1, sequence: 1 });
    const inbox = () =>
      database.db.select().from(processedEvents).where(eq(processedEvents.consumer, "skipping"));
    expect(await inbox()).toHaveLength(0);
    expect(await effects("skipping", skipped.id)).toBe(0);
    // A redelivery may have failures or a dead letter of an earlier version to settle: it is handled.
    await deliver(deps, skipping, { event: skipped, attempt: 2, sequence: 1 });
    expect(await effects("skipping", skipped.id)).toBe(1);
    // In a batch, the skipped one is left out and its neighbour handled.
    const [other, fine] = [{ ...event("Fine"), payload: { skip: true } }, event("Fine")];
    await deliverBatch(deps, skipping, [
      { event: other, attempt: 1, sequence: 2 },
      { event: fine, attempt: 1, sequence: 3 },
    ]);
    expect((await inbox()).map((r) => r.eventId).sort()).toEqual([skipped.id, fine.id].sort());
    expect(await effects("skipping", other.id)).toBe(0);
    expect(await effects("skipping", fine.id)).toBe(1);
  });

  describe("in batches", () => {
    type Outcomes = { listener: string; eventId: string; outcome: string }[];
    /** The runner's deps on an in-process bus of its own, counting the transactions it opens. */
    const batchDeps = (outcomes: Outcomes, retry = { maxAttempts: 3, backoffMs: () => 20 }) => {
      const counted = { transactions: 0 };
      const db = new Proxy(database.db, {
        get(target, property, receiver) {
          if (property === "transaction")
            return (...args: Parameters<typeof target.transaction>) => {
              counted.transactions++;
              return target.transaction(...args);
            };
          return Reflect.get(target, property, receiver);
        },
      });
      const inProcess = new InProcessBus();
      const deps: ListenerDeps = {
        db,
        bus: inProcess,
        logger,
        retry,
        onHandled: (listener, e, outcome) => outcomes.push({ listener, eventId: e.id, outcome }),
      };
      return { deps, counted, bus: inProcess };
    };
    const ofOrder = (type: string, orderId: string): BusEvent => ({ ...event(type), orderId });

    it("fails a poisoned event alone: its neighbours commit once each, it is retried on its own and dead-lettered", async () => {
      const outcomes: Outcomes = [];
      const { deps, bus: inProcess } = batchDeps(outcomes);
      const tries: string[] = [];
      const base = counting("batch-poison", (e) => e.type === "Poison");
      const listener: Listener = {
        ...base,
        handle: async (tx, e) => {
          tries.push(e.id);
          await base.handle(tx, e);
        },
      };
      const [a, b] = [randomUUID(), randomUUID()];
      const poison = event("Poison");
      const fine = [ofOrder("Fine", a), ofOrder("Fine", a), ofOrder("Fine", b), ofOrder("Fine", b)];
      await inProcess.publish([fine[0]!, fine[1]!, poison, fine[2]!, fine[3]!]);
      const consumption = await runListener(deps, listener);
      try {
        await eventually(
          async () =>
            (await database.db.select().from(deadLetters).where(eq(deadLetters.eventId, poison.id))).length >
            0,
          { what: "the dead letter" },
        );
      } finally {
        await consumption.stop();
      }
      for (const e of fine) expect(await effects("batch-poison", e.id)).toBe(1);
      expect(await effects("batch-poison", poison.id)).toBe(0);
      // The batch, rolled back at the poison; then each of its events in a transaction of its own;
      // then the poison alone, until it is given up on.
      const [f0, f1, f2, f3] = fine.map((e) => e.id);
      const p = poison.id;
      expect(tries).toEqual([f0, f1, p, f0, f1, p, f2, f3, p, p]);
      const of = (e: BusEvent) => outcomes.filter((o) => o.eventId === e.id).map((o) => o.outcome);
      for (const e of fine) expect(of(e)).toEqual(["applied"]);
      expect(of(poison)).toEqual(["failed", "failed", "dead"]);
      const [dead] = await database.db.select().from(deadLetters).where(eq(deadLetters.eventId, poison.id));
      expect(dead).toMatchObject({ consumer: "batch-poison", attempts: 3 });
      const failures = await database.db
        .select()
        .from(listenerFailures)
        .where(eq(listenerFailures.eventId, poison.id));
      expect(failures).toHaveLength(0);
    });

    it("applies nothing twice from a redelivered batch, nor from an event a batch holds twice", async () => {
      const outcomes: Outcomes = [];
      const { deps, counted } = batchDeps(outcomes);
      const listener = counting("batch-again");
      const [x, y, z] = [event("Fine"), event("Fine"), event("Fine")];
      const first = [x, y].map((e, i) => ({ event: e, attempt: 1, sequence: i + 1 }));
      expect(await deliverBatch(deps, listener, first)).toEqual([{ kind: "done" }, { kind: "done" }]);
      // The acks were lost: the same batch again, and a new event with a repeat of itself.
      const again = [
        ...first.map((d) => ({ ...d, attempt: 2 })),
        { event: z, attempt: 1, sequence: 3 },
        { event: z, attempt: 2, sequence: 3 },
      ];
      expect(await deliverBatch(deps, listener, again)).toEqual(again.map(() => ({ kind: "done" })));
      for (const e of [x, y, z]) expect(await effects("batch-again", e.id)).toBe(1);
      expect(counted.transactions).toBe(2);
      expect(outcomes.map((o) => o.outcome)).toEqual([
        "applied",
        "applied",
        "duplicate",
        "duplicate",
        "applied",
        "duplicate",
      ]);
    });

    it("applies the events of one order in stream order, in one transaction for the batch", async () => {
      await database.db.execute(
        sql`create table if not exists applied (seq bigserial primary key, order_id uuid not null, event_id uuid not null)`,
      );
      const outcomes: Outcomes = [];
      const { deps, counted, bus: inProcess } = batchDeps(outcomes);
      const batches: number[] = [];
      const listener: Listener = {
        name: "batch-order",
        types: ["A1", "B1", "A2", "A3", "B2"],
        handleBatch: async (tx, batch) => {
          batches.push(batch.length);
          for (const e of batch)
            await tx.execute(sql`insert into applied (order_id, event_id) values (${e.orderId}, ${e.id})`);
        },
      };
      const [a, b] = [randomUUID(), randomUUID()];
      const events = [
        ofOrder("A1", a),
        ofOrder("B1", b),
        ofOrder("A2", a),
        ofOrder("A3", a),
        ofOrder("B2", b),
      ];
      await inProcess.publish(events);
      const consumption = await runListener(deps, listener);
      try {
        await eventually(() => outcomes.length === events.length, { what: "every event" });
      } finally {
        await consumption.stop();
      }
      const rows = await query<{ event_id: string }>(
        database.db,
        sql`select event_id from applied where order_id in (${a}, ${b}) order by seq`,
      );
      expect(rows.map((r) => r.event_id)).toEqual(events.map((e) => e.id));
      expect(batches).toEqual([events.length]);
      expect(counted.transactions).toBe(1);
    });
  });
});
