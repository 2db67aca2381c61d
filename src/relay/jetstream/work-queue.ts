import type { Consumer, JsMsg } from "@nats-io/jetstream";
import {
  type BatchConsumerSpec,
  type ConsumerSpec,
  type Consumption,
  type Delivery,
  defaultBatchSize,
  type SingleConsumerSpec,
} from "../bus.ts";
import type { BusLogger, BusParts } from "./connection.ts";
import { Feed, pullExpiresMs } from "./feed.ts";
import { parse } from "./topology.ts";

/** Well under ack_wait, so a long handler does not get its message redelivered elsewhere. */
const workingEvery = (ackWaitMs: number) => Math.min(10_000, Math.max(50, Math.floor(ackWaitMs / 3)));

/** A durable consumer's deliveries, at least once, shared by every process that consumes the same name. */
export function consume(parts: BusParts, spec: ConsumerSpec): Promise<Consumption> {
  return "handleBatch" in spec ? consumeBatches(parts, spec) : consumeEach(parts, spec);
}

async function consumeEach(parts: BusParts, spec: SingleConsumerSpec): Promise<Consumption> {
  const { connection, topology, log } = parts;
  const { nc } = connection.clients();
  const durable = topology.durable(spec.name);
  const limit = Math.max(1, spec.concurrency ?? 1);
  const inflight = new Set<Promise<void>>();
  const held = new Set<JsMsg>();
  // Created here so a missing stream or a refused config fails the caller, not a background loop.
  let consumer: Consumer | undefined = await topology.ensureConsumer(
    connection.clients(),
    durable,
    spec.types,
  );

  const feed = new Feed(
    nc,
    log,
    { consumer: durable },
    {
      open: async () => {
        consumer ??= await topology.ensureConsumer(connection.clients(), durable, spec.types);
        const current = consumer;
        // Next time round (the feed ended on its own), look the consumer up again: it may be gone.
        consumer = undefined;
        // A small client buffer: buffered messages count against ack_wait while they wait for a slot.
        return current.consume({ max_messages: limit, expires: pullExpiresMs });
      },
      each: async (msg, stopping) => {
        if (stopping) {
          // Already pulled but not started: hand it back now rather than after ack_wait.
          msg.nak();
          return;
        }
        held.add(msg);
        const job = deliver(spec, msg, durable, log, workingEvery(topology.ackWaitMs)).finally(() => {
          inflight.delete(job);
          held.delete(msg);
        });
        inflight.add(job);
        if (inflight.size >= limit) await Promise.race(inflight);
      },
      // The client keeps pulling from a consumer that no longer exists; end the feed so it is re-created.
      gone: (type) => type === "consumer_deleted" || type === "consumer_not_found",
    },
  );

  return {
    stop: async () => {
      await feed.stop();
      await Promise.all(inflight);
    },
    handBack: () => {
      for (const msg of held) settle(msg, "nak", log);
      held.clear();
    },
  };
}

/**
 * Batches of what the client holds: a message that arrives while a batch is
 * handled waits for the next one, so a batch is never held back to fill up
 * (unless the spec gathers: then the first message of an idle consumer waits
 * gatherMs for others). One batch at a time keeps the stream's order inside
 * this process.
 */
async function consumeBatches(parts: BusParts, spec: BatchConsumerSpec): Promise<Consumption> {
  const { connection, topology, log } = parts;
  const { nc } = connection.clients();
  const durable = topology.durable(spec.name);
  const size = Math.max(1, spec.batchSize ?? defaultBatchSize);
  const waiting: JsMsg[] = [];
  /** The batch being handled. */
  let handling: JsMsg[] = [];
  let draining: Promise<void> | undefined;
  let batchEnded: (() => void)[] = [];
  let consumer: Consumer | undefined = await topology.ensureConsumer(
    connection.clients(),
    durable,
    spec.types,
  );

  /** Lets the client's deliveries held back by a full next batch go on (they look again). */
  const endBatch = () => {
    const ended = batchEnded;
    batchEnded = [];
    for (const resolve of ended) resolve();
  };

  const drain = async (): Promise<void> => {
    // Let the messages the client already holds (or that come within gatherMs) join the first batch.
    const gatherMs = spec.gatherMs ?? 0;
    await new Promise((resolve) => (gatherMs > 0 ? setTimeout(resolve, gatherMs) : setImmediate(resolve)));
    for (;;) {
      const batch = waiting.splice(0, size);
      if (batch.length === 0) {
        draining = undefined;
        // The next batch was emptied by stop() or handBack() (while this one gathered, say): a delivery
        // waiting for room must not wait for a batch that will never end, or stop() waits with it.
        endBatch();
        return;
      }
      handling = batch;
      await deliverBatch(spec, batch, durable, log, workingEvery(topology.ackWaitMs));
      handling = [];
      endBatch();
    }
  };

  const feed = new Feed(
    nc,
    log,
    { consumer: durable },
    {
      open: async () => {
        consumer ??= await topology.ensureConsumer(connection.clients(), durable, spec.types);
        const current = consumer;
        consumer = undefined;
        // A batch in hand and the next one buffered: buffered messages count against ack_wait.
        return current.consume({ max_messages: size, expires: pullExpiresMs });
      },
      each: async (msg, stopping) => {
        if (stopping) {
          msg.nak();
          return;
        }
        waiting.push(msg);
        draining ??= drain();
        // The next batch is full: take no more until a batch ends.
        while (waiting.length >= size && draining)
          await new Promise<void>((resolve) => batchEnded.push(resolve));
      },
      gone: (type) => type === "consumer_deleted" || type === "consumer_not_found",
    },
  );

  return {
    stop: async () => {
      const stopped = feed.stop();
      // Pulled but not started: hand them back now rather than after ack_wait.
      for (const msg of waiting.splice(0)) settle(msg, "nak", log);
      await stopped;
      await draining;
    },
    handBack: () => {
      for (const msg of [...waiting.splice(0), ...handling.splice(0)]) settle(msg, "nak", log);
    },
  };
}

async function deliverBatch(
  spec: BatchConsumerSpec,
  msgs: JsMsg[],
  durable: string,
  log: BusLogger,
  workingEveryMs: number,
) {
  const held: JsMsg[] = [];
  const deliveries: Delivery[] = [];
  for (const msg of msgs) {
    const delivery = toDelivery(msg, durable, log);
    if (!delivery) continue;
    held.push(msg);
    deliveries.push(delivery);
  }
  if (deliveries.length === 0) return;
  const working = setInterval(() => {
    for (const msg of held) settle(msg, "working", log);
  }, workingEveryMs);
  try {
    const outcomes = await spec.handleBatch(deliveries);
    held.forEach((msg, i) => {
      const outcome = outcomes[i];
      if (outcome?.kind === "done") settle(msg, "ack", log);
      else settle(msg, "nak", log, outcome?.delayMs ?? 1_000);
    });
  } catch (err) {
    log.error(
      { err, consumer: durable, events: deliveries.length },
      "bus: batch handler threw, retrying in 1s",
    );
    for (const msg of held) settle(msg, "nak", log, 1_000);
  } finally {
    clearInterval(working);
  }
}

/** The message as a delivery; one that is not an event is terminated, since redelivering it would fail the same way forever. */
function toDelivery(msg: JsMsg, durable: string, log: BusLogger): Delivery | undefined {
  const event = parse(msg);
  if (!event) {
    log.error(
      { consumer: durable, subject: msg.subject, sequence: msg.info.streamSequence },
      "bus: dropped a message that is not an event",
    );
    settle(msg, "term", log);
    return undefined;
  }
  return { event, attempt: msg.info.deliveryCount, sequence: msg.info.streamSequence };
}

async function deliver(
  spec: SingleConsumerSpec,
  msg: JsMsg,
  durable: string,
  log: BusLogger,
  workingEveryMs: number,
): Promise<void> {
  const delivery = toDelivery(msg, durable, log);
  if (!delivery) return;
  const { event } = delivery;
  const working = setInterval(() => settle(msg, "working", log), workingEveryMs);
  try {
    const outcome = await spec.handle(delivery);
    if (outcome.kind === "done") settle(msg, "ack", log);
    else settle(msg, "nak", log, outcome.delayMs);
  } catch (err) {
    log.error({ err, consumer: durable, eventId: event.id }, "bus: handler threw, retrying in 1s");
    settle(msg, "nak", log, 1_000);
  } finally {
    clearInterval(working);
  }
}

/** Acks are fire and forget; on a closed connection they throw, and the server redelivers anyway. */
function settle(msg: JsMsg, how: "ack" | "nak" | "term" | "working", log: BusLogger, delayMs?: number): void {
  try {
    if (how === "ack") msg.ack();
    else if (how === "nak") msg.nak(delayMs);
    else if (how === "term") msg.term();
    else msg.working();
  } catch (err) {
    log.warn({ err, sequence: msg.info.streamSequence, how }, "bus: could not answer a message");
  }
}
