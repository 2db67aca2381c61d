import type { Consumer, JsMsg } from "@nats-io/jetstream";
import type { ConsumerSpec, Consumption, Delivery } from "../bus.ts";
import type { BusLogger, BusParts } from "./connection.ts";
import { Feed } from "./feed.ts";
import { parse } from "./topology.ts";

/** Under ack_wait (30s), so a long handler does not get its message redelivered elsewhere. */
const workingEveryMs = 10_000;

/** A durable consumer's deliveries, at least once, shared by every process that consumes the same name. */
export async function consume(parts: BusParts, spec: ConsumerSpec): Promise<Consumption> {
  const { connection, topology, log } = parts;
  const { nc } = connection.clients();
  const durable = topology.durable(spec.name);
  const limit = Math.max(1, spec.concurrency ?? 1);
  const inflight = new Set<Promise<void>>();
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
        return current.consume({ max_messages: limit });
      },
      each: async (msg, stopping) => {
        if (stopping) {
          // Already pulled but not started: hand it back now rather than after ack_wait.
          msg.nak();
          return;
        }
        const job = deliver(spec, msg, durable, log).finally(() => inflight.delete(job));
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
  };
}

async function deliver(spec: ConsumerSpec, msg: JsMsg, durable: string, log: BusLogger): Promise<void> {
  const event = parse(msg);
  if (!event) {
    // Redelivering it would fail the same way forever.
    log.error(
      { consumer: durable, subject: msg.subject, sequence: msg.info.streamSequence },
      "bus: dropped a message that is not an event",
    );
    settle(msg, "term", log);
    return;
  }
  const delivery: Delivery = {
    event,
    attempt: msg.info.deliveryCount,
    sequence: msg.info.streamSequence,
  };
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
