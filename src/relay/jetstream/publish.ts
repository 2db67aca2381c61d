import { JetStreamApiError, type MsgRequest } from "@nats-io/jetstream";
import { type BusEvent, type Publication, publicationId } from "../bus.ts";
import type { BusParts } from "./connection.ts";

/** Orders whose subjects lookup() walks at once. */
const lookupConcurrency = 16;
/** JetStream's code for "message size exceeds maximum allowed" (the stream's max_msg_size). */
const messageTooLarge = 10054;

export async function publish(
  { connection, topology }: BusParts,
  events: BusEvent[],
): Promise<Publication[]> {
  const { js } = connection.clients();
  // Every publish goes out before the first ack is awaited; the socket keeps them in order.
  const acks = events.map(async (event) =>
    js.publish(topology.subject(event), JSON.stringify(event), { msgID: publicationId(event) }),
  );
  // A repeat inside the duplicate window answers with the sequence the event was first stored at.
  return (await Promise.allSettled(acks)).map((r) =>
    r.status === "fulfilled" ? { ok: true, sequence: r.value.seq } : refusal(r.reason),
  );
}

/**
 * A refusal is lasting when sending the same event again must fail the same
 * way: it is larger than the server or the stream accepts, or it cannot be
 * put on a subject. Anything else (no responders, a timeout, a 503 during a
 * leader election, a lost connection) may pass on a retry.
 */
function refusal(reason: unknown): Publication {
  const error = reason instanceof Error ? reason : new Error(String(reason));
  const lasting =
    (error instanceof JetStreamApiError && error.code === messageTooLarge) ||
    /max_payload|cannot be a subject token/.test(error.message);
  return { ok: false, error, lasting };
}

export async function lookup(
  { connection, topology }: BusParts,
  events: BusEvent[],
): Promise<Map<string, number>> {
  const { jsm } = connection.clients();
  const wanted = new Set(events.map(publicationId));
  const found = new Map<string, number>();
  // One walk per order through its subjects, a few orders at a time: an order has tens of events,
  // and this runs only for events old enough to have left the duplicate window, which is rare.
  const walk = async (orderId: string) => {
    const subject = topology.orderSubjects(orderId);
    for (let seq = 1; ; ) {
      // The server (2.9+) answers next_by_subj on this API too; the client's types only allow it on direct gets.
      const next = { seq, next_by_subj: subject } as unknown as MsgRequest;
      const msg = await jsm.streams.getMessage(topology.stream, next);
      if (!msg) return;
      const id = msg.header.get("Nats-Msg-Id");
      if (wanted.has(id) && !found.has(id)) found.set(id, msg.seq);
      seq = msg.seq + 1;
    }
  };
  const orders = [...new Set(events.map((e) => e.orderId))];
  for (let i = 0; i < orders.length; i += lookupConcurrency) {
    await Promise.all(orders.slice(i, i + lookupConcurrency).map(walk));
  }
  return found;
}
