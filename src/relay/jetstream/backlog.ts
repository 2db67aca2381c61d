import type { ConsumerBacklog } from "../bus.ts";
import type { BusParts } from "./connection.ts";

/** The stream's durable consumers as the server counts them; the live tails (ephemeral) are left out. */
export async function backlog({ connection, topology }: BusParts): Promise<ConsumerBacklog[]> {
  const durable = `${topology.prefix}_`;
  const found: ConsumerBacklog[] = [];
  for await (const info of connection.clients().jsm.consumers.list(topology.stream)) {
    const name = info.config.durable_name;
    if (!name?.startsWith(durable)) continue;
    found.push({
      consumer: name.slice(durable.length),
      waiting: info.num_pending,
      inFlight: info.num_ack_pending,
    });
  }
  return found.sort((a, b) => a.consumer.localeCompare(b.consumer));
}
