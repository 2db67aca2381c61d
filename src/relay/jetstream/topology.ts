import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { BusEvent } from "../bus.ts";
import type { BusLogger, Clients } from "./connection.ts";

/** What the stream keeps, and on how many servers. */
export interface StreamLimits {
  /** Servers of a cluster that each hold the stream (1, 3 or 5); its consumers inherit it. */
  replicas: number;
  /** Events older than this are removed: the reach of a resume and of a listener that starts late. */
  maxAgeMs: number;
  /** The oldest events go first past this size; undefined: no limit but the age. */
  maxBytes: number | undefined;
}

export const defaultStreamLimits: StreamLimits = {
  replicas: 1,
  maxAgeMs: 7 * 24 * 3_600_000,
  maxBytes: undefined,
};

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
    readonly limits: StreamLimits = defaultStreamLimits,
    /** How long the server waits for an ack before it delivers a message again. */
    readonly ackWaitMs = 30_000,
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

  /**
   * How a durable consumer of these types (absent: every type) asks the
   * server for them: a subject per type where the server takes several
   * (2.10), the one type's subject where it takes one (2.9), else every
   * subject, the consumer then acknowledging the other types unread.
   */
  consumerFilter(types: readonly string[] | undefined, severalFilters: boolean): string[] {
    if (!types || types.length === 0) return [this.subjects];
    if (types.length === 1 || severalFilters) return [...new Set(types)].map((t) => this.typeSubjects(t));
    return [this.subjects];
  }

  /** Every subject of one type, whatever the order. */
  typeSubjects(type: string): string {
    return `${this.prefix}.events.${type}.*`;
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
      num_replicas: this.limits.replicas,
      max_age: nanos(this.limits.maxAgeMs),
      max_bytes: this.limits.maxBytes ?? -1,
      discard: DiscardPolicy.Old,
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
      // It exists with other settings (an older version, other limits, fewer replicas): the
      // configuration's limits are brought in, its other settings stay.
      const before = (await jsm.streams.info(this.stream)).config;
      // Replicas only go up by themselves: a process started without NATS_REPLICAS (a rolling deploy,
      // a one-off tool) must not take a cluster's copies away. Lowering them is an operator's act.
      const replicas = Math.max(before.num_replicas, config.num_replicas);
      if (replicas > config.num_replicas)
        this.log.warn(
          { stream: this.stream, replicas: before.num_replicas, configured: config.num_replicas },
          `bus: the stream has ${before.num_replicas} replicas, more than NATS_REPLICAS (${config.num_replicas}); keeping ${before.num_replicas} (lower them with \`nats stream edit\` if that is meant)`,
        );
      const wanted = { ...config, num_replicas: replicas };
      const changed = Object.fromEntries(
        Object.entries({
          replicas: [before.num_replicas, replicas],
          maxAgeMs: [before.max_age / 1e6, this.limits.maxAgeMs],
          maxBytes: [before.max_bytes, wanted.max_bytes],
          duplicateWindowMs: [before.duplicate_window / 1e6, this.duplicateWindowMs],
        }).filter(([, [was, now]]) => was !== now),
      );
      await jsm.streams.update(this.stream, wanted);
      this.log.info(
        { stream: this.stream, changed },
        before.num_replicas === replicas
          ? "bus: stream updated"
          : `bus: stream updated from ${before.num_replicas} to ${replicas} replicas (the servers copy it over in the background)`,
      );
    }
  }

  /**
   * The durable consumer, created or brought to these filters. A filter
   * change is an update in place: the consumer keeps its position (see
   * README, "NATS version"), so nothing is skipped or handled twice.
   */
  async ensureConsumer(
    { js, jsm, nc }: Clients,
    durable: string,
    types?: readonly string[],
  ): Promise<Consumer> {
    const several = takesSeveralFilters(nc.info?.version);
    const filters = this.consumerFilter(types, several);
    if (!several && types && types.length > 1)
      this.log.warn(
        { consumer: durable, server: nc.info?.version, types },
        "bus: this nats-server takes one filter subject per consumer (2.10 takes several): the consumer receives every event and skips the others",
      );
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      deliver_policy: DeliverPolicy.All,
      ack_policy: AckPolicy.Explicit,
      max_deliver: -1,
      ack_wait: nanos(this.ackWaitMs),
      ...filterConfig(filters),
    };
    let info: ConsumerInfo;
    try {
      // 2.9 answers with the existing consumer (updated if needed); two processes racing both succeed.
      info = await jsm.consumers.add(this.stream, config);
    } catch (err) {
      // Newer servers refuse to "create" over a different config: start from the one that is there.
      const existing = await jsm.consumers.info(this.stream, durable).catch(() => undefined);
      if (!existing) throw err;
      info = existing;
    }
    const ackWait = nanos(this.ackWaitMs);
    if (!sameFilters(info.config, filters) || info.config.ack_wait !== ackWait) {
      try {
        info = await jsm.consumers.update(this.stream, durable, {
          ...filterConfig(filters),
          ack_wait: ackWait,
        });
        this.log.info({ consumer: durable, filters, ackWaitMs: this.ackWaitMs }, "bus: consumer updated");
      } catch (err) {
        // Still correct, only slower: the consumer acknowledges what it does not handle.
        this.log.warn({ err, consumer: durable }, "bus: using the existing consumer's filters as they are");
      }
    }
    return js.consumers.getConsumerFromInfo(info);
  }
}

/** Whether a server of this version (from its INFO) takes several filter subjects per consumer: 2.10 on. */
export function takesSeveralFilters(version: string | undefined): boolean {
  const [major = 0, minor = 0] = (version ?? "").split(".").map((n) => Number.parseInt(n, 10));
  return major > 2 || (major === 2 && minor >= 10);
}

/** One filter as `filter_subject` (any server), several as `filter_subjects` (2.10), never both. */
function filterConfig(filters: string[]): Partial<ConsumerConfig> {
  return filters.length === 1
    ? { filter_subject: filters[0], filter_subjects: undefined }
    : { filter_subject: undefined, filter_subjects: filters };
}

function sameFilters(config: ConsumerConfig, filters: string[]): boolean {
  const current = config.filter_subjects?.length
    ? config.filter_subjects
    : config.filter_subject
      ? [config.filter_subject]
      : [];
  return current.length === filters.length && filters.every((f) => current.includes(f));
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
