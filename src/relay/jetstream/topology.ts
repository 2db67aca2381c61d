import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  DeliverPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { BusEvent } from "../bus.ts";
import type { BusLogger, Clients } from "./connection.ts";

/** Server code for "stream name already in use with a different configuration". */
const streamNameInUse = 10058;

/**
 * The stream, its subjects and the durable consumers, all named from one
 * prefix: `<prefix>_events` holds `<prefix>.events.<type>.<orderId>`.
 */
export class Topology {
  readonly stream: string;
  readonly subjects: string;

  constructor(
    readonly prefix: string,
    readonly duplicateWindowMs: number,
    private readonly log: BusLogger,
  ) {
    if (!/^\w+$/.test(prefix)) throw new Error(`invalid bus prefix: ${prefix}`);
    this.stream = `${prefix}_events`;
    this.subjects = `${prefix}.events.>`;
  }

  subject(event: BusEvent): string {
    // A dot or wildcard would silently land the event on another subject (or none).
    for (const token of [event.type, event.orderId]) {
      if (!/^[^.*>\s]+$/.test(token))
        throw new Error(`event ${event.id}: "${token}" cannot be a subject token`);
    }
    return `${this.prefix}.events.${event.type}.${event.orderId}`;
  }

  /** The narrowest subject filter for these types (and order): the server filters one type itself. */
  filter(types: string[], orderId?: string): string {
    return types.length === 1 ? `${this.prefix}.events.${types[0]}.${orderId ?? ">"}` : this.subjects;
  }

  /** Every subject of one order, whatever the type. */
  orderSubjects(orderId: string): string {
    return `${this.prefix}.events.*.${orderId}`;
  }

  durable(name: string): string {
    return `${this.prefix}_${name}`;
  }

  async ensureStream({ jsm }: Clients): Promise<void> {
    const config = {
      subjects: [this.subjects],
      duplicate_window: nanos(this.duplicateWindowMs),
    };
    try {
      // Creating with an identical config succeeds, so processes starting together all get here.
      await jsm.streams.add({
        name: this.stream,
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        ...config,
      });
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === streamNameInUse)) throw err;
      // It exists with other settings (an older version, or limits set by an operator): keep those,
      // bring ours in.
      await jsm.streams.update(this.stream, config);
      this.log.info({ stream: this.stream }, "bus: stream updated");
    }
  }

  async ensureConsumer({ js, jsm }: Clients, durable: string): Promise<Consumer> {
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      deliver_policy: DeliverPolicy.All,
      ack_policy: AckPolicy.Explicit,
      max_deliver: -1,
      ack_wait: nanos(30_000),
      filter_subject: this.subjects,
    };
    try {
      // 2.9 answers with the existing consumer (updated if needed); two processes racing both succeed.
      return js.consumers.getConsumerFromInfo(await jsm.consumers.add(this.stream, config));
    } catch (err) {
      // Newer servers refuse to "create" over a different config: use the one that is there.
      const info = await jsm.consumers.info(this.stream, durable).catch(() => undefined);
      if (!info) throw err;
      this.log.warn({ err, consumer: durable }, "bus: using the existing consumer as it is");
      return js.consumers.getConsumerFromInfo(info);
    }
  }
}

/** A stored message as an event, or undefined when it is not one (a stray publish on our subjects). */
export function parse(msg: { json(): unknown }): BusEvent | undefined {
  try {
    const value: unknown = msg.json();
    if (typeof value !== "object" || value === null) return undefined;
    const event = value as Partial<BusEvent>;
    if (typeof event.id !== "string" || typeof event.type !== "string") return undefined;
    return event as BusEvent;
  } catch {
    return undefined;
  }
}
