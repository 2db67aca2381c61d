import type { Consumer, ConsumerMessages } from "@nats-io/jetstream";
import type { Consumption, Delivery, TailSpec } from "../bus.ts";
import type { BusParts } from "./connection.ts";
import { Feed } from "./feed.ts";
import { parse } from "./topology.ts";

/** The live tail: an ephemeral ordered consumer from a position, never acked, deleted on stop. */
export async function tail(
  { connection, topology, log }: BusParts,
  spec: TailSpec,
  onEvent: (delivery: Delivery) => void,
): Promise<Consumption> {
  const { nc, js, jsm } = connection.clients();
  if (spec.types.length === 0) return { stop: async () => {} };
  const types = new Set(spec.types);
  const filter = topology.filter(spec.types);
  // Not DeliverPolicy.New: when nats.js re-creates an ordered consumer that has seen nothing yet,
  // it restarts from sequence 1 and would replay the whole stream. A start sequence survives that.
  let next = spec.afterSequence ?? (await jsm.streams.info(topology.stream)).state.last_seq;
  next += 1;
  let consumer: Consumer | undefined;
  const open = async () => {
    consumer = await js.consumers.get(topology.stream, { filter_subjects: filter, opt_start_seq: next });
    // As the work queue's pulls (work-queue.ts): back within seconds after a NATS restart.
    return consumer.consume({ expires: 5_000 });
  };
  // Opened here so a missing stream fails the caller, not a background loop.
  let first: ConsumerMessages | undefined = await open();

  const feed = new Feed(
    nc,
    log,
    { tail: spec.types },
    {
      open: () => {
        const messages = first ?? open();
        first = undefined;
        return Promise.resolve(messages);
      },
      each: (msg, stopping) => {
        if (stopping) return;
        next = msg.info.streamSequence + 1;
        const event = parse(msg);
        if (!event) {
          log.error(
            { subject: msg.subject, sequence: msg.seq },
            "bus: tail skipped a message that is not an event",
          );
          return;
        }
        if (!types.has(event.type)) return;
        try {
          onEvent({ event, attempt: 1, sequence: msg.info.streamSequence });
        } catch (err) {
          log.error({ err, eventId: event.id }, "bus: tail listener threw");
        }
      },
    },
  );

  return {
    stop: async () => {
      await feed.stop();
      // The server would drop it after 5 minutes idle; one tail per live subscription adds up.
      consumer?.delete().catch(() => {});
    },
  };
}
