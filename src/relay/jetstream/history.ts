import type { BusEvent, Delivery, ReplaySpec } from "../bus.ts";
import type { BusParts } from "./connection.ts";
import { parse } from "./topology.ts";

/** A replay that gets nothing this long (the server down, say) fails rather than waits for ever. */
const replayStallMs = 30_000;
const replayRetryMs = 250;

export async function position({ connection, topology }: BusParts): Promise<number> {
  return (await connection.clients().jsm.streams.info(topology.stream)).state.last_seq;
}

export async function firstPosition({ connection, topology }: BusParts): Promise<number> {
  return (await connection.clients().jsm.streams.info(topology.stream)).state.first_seq;
}

/** The events between two sequences, a page at a time as the reader pulls. */
export async function* replay(parts: BusParts, spec: ReplaySpec): AsyncIterable<Delivery> {
  const { connection, topology, log } = parts;
  const types = new Set(spec.types);
  const filter = topology.filter(spec.types, spec.orderId);
  // Where the replay ends is known before the first fetch: a resume with nothing to replay returns at
  // once, and a fetch that comes back empty or fails (a reconnect, a server restart) is no reason to stop.
  let end = await lastMatching(parts, filter, spec.untilSequence);
  let read = spec.afterSequence;
  if (end <= read) return;
  const consumer = await connection.clients().js.consumers.get(topology.stream, {
    filter_subjects: filter,
    opt_start_seq: read + 1,
  });
  let stalledSince: number | undefined;
  try {
    while (read < end) {
      let got = 0;
      try {
        const page = await consumer.fetch({ max_messages: spec.pageSize ?? 200, expires: 1_000 });
        for await (const msg of page) {
          got++;
          const sequence = msg.info.streamSequence;
          if (sequence > end) return;
          read = sequence;
          const event = parse(msg);
          if (
            event &&
            types.has(event.type) &&
            (spec.orderId === undefined || event.orderId === spec.orderId)
          ) {
            yield { event, attempt: 1, sequence };
          }
          if (sequence >= end) return;
        }
      } catch (err) {
        log.warn({ err, stream: topology.stream, after: read }, "bus: replay fetch failed, trying again");
        await new Promise((resolve) => setTimeout(resolve, replayRetryMs));
      }
      if (got > 0) {
        stalledSince = undefined;
        continue;
      }
      stalledSince ??= Date.now();
      if (Date.now() - stalledSince > replayStallMs)
        throw new Error(`replay of ${filter} stalled after sequence ${read}, short of ${end}`);
      // The messages up to `end` may have been removed meanwhile (stream limits, an operator).
      end = await lastMatching(parts, filter, spec.untilSequence).catch(() => end);
    }
  } finally {
    consumer.delete().catch(() => {});
  }
}

export async function eventAt(
  { connection, topology }: BusParts,
  sequence: number,
): Promise<BusEvent | undefined> {
  if (sequence < 1) return undefined;
  const stored = await connection.clients().jsm.streams.getMessage(topology.stream, { seq: sequence });
  return stored ? parse(stored) : undefined;
}

/** The last sequence that matches `filter`, at most `until`: `until` itself when a later one matches. */
async function lastMatching(
  { connection, topology }: BusParts,
  filter: string,
  until: number,
): Promise<number> {
  const last = await connection.clients().jsm.streams.getMessage(topology.stream, { last_by_subj: filter });
  return Math.min(last?.seq ?? 0, until);
}
