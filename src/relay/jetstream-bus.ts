import type {
  Bus,
  BusEvent,
  ConsumerBacklog,
  ConsumerSpec,
  Consumption,
  Delivery,
  Publication,
  ReplaySpec,
  TailSpec,
} from "./bus.ts";
import { backlog } from "./jetstream/backlog.ts";
import { type BusLogger, type BusParts, Connection, quiet } from "./jetstream/connection.ts";
import { eventAt, firstPosition, position, replay } from "./jetstream/history.ts";
import { lookup, publish } from "./jetstream/publish.ts";
import { tail } from "./jetstream/tail.ts";
import { defaultStreamLimits, type StreamLimits, Topology } from "./jetstream/topology.ts";
import { consume } from "./jetstream/work-queue.ts";

export type { BusLogger } from "./jetstream/connection.ts";

export interface JetStreamBusOptions {
  /** A server, or several of one cluster (the client fails over between them). */
  url: string | string[];
  /** A plain token (letters, digits, underscore) that namespaces the stream, subjects and consumers. */
  prefix: string;
  /** How long JetStream remembers a message id to drop a repeated publish. Default 120000 ms. */
  duplicateWindowMs?: number;
  /** The stream's limits: replicas on a cluster (default 1), max age (default 7 days), max bytes (default none). */
  limits?: Partial<StreamLimits>;
  /** How long a consumer waits for an ack before it delivers the message again. Default 30000 ms. */
  ackWaitMs?: number;
  logger?: BusLogger;
}

/**
 * The bus on NATS JetStream, one job per file under jetstream/: the
 * connection, the topology (stream and consumers), publish and lookup, the
 * work queue, the live tail and the history. This class only wires them and
 * stops what is running on close.
 */
export class JetStreamBus implements Bus {
  readonly kind = "jetstream" as const;
  readonly stream: string;
  readonly subjects: string;
  readonly duplicateWindowMs: number;
  readonly limits: StreamLimits;
  private readonly parts: BusParts;
  private readonly running = new Set<Consumption>();

  constructor(options: JetStreamBusOptions) {
    const log = options.logger ?? quiet;
    const topology = new Topology(
      options.prefix,
      options.duplicateWindowMs ?? 120_000,
      log,
      { ...defaultStreamLimits, ...options.limits },
      options.ackWaitMs ?? 30_000,
    );
    const connection = new Connection(options.url, `order-gateway:${options.prefix}`, log);
    this.parts = { connection, topology, log };
    this.stream = topology.stream;
    this.subjects = topology.subjects;
    this.duplicateWindowMs = topology.duplicateWindowMs;
    this.limits = topology.limits;
  }

  async start(): Promise<void> {
    await this.parts.connection.open();
    await this.parts.topology.ensureStream(this.parts.connection.clients());
  }

  publish(events: BusEvent[]): Promise<Publication[]> {
    return publish(this.parts, events);
  }

  lookup(events: BusEvent[]): Promise<Map<string, number>> {
    return lookup(this.parts, events);
  }

  async consume(spec: ConsumerSpec): Promise<Consumption> {
    return this.track(await consume(this.parts, spec));
  }

  async tail(spec: TailSpec, onEvent: (delivery: Delivery) => void): Promise<Consumption> {
    return this.track(await tail(this.parts, spec, onEvent));
  }

  position(): Promise<number> {
    return position(this.parts);
  }

  firstPosition(): Promise<number> {
    return firstPosition(this.parts);
  }

  replay(spec: ReplaySpec): AsyncIterable<Delivery> {
    return replay(this.parts, spec);
  }

  eventAt(sequence: number): Promise<BusEvent | undefined> {
    return eventAt(this.parts, sequence);
  }

  backlog(): Promise<ConsumerBacklog[]> {
    return backlog(this.parts);
  }

  ping(): Promise<void> {
    return this.parts.connection.ping();
  }

  close(): Promise<void> {
    return this.parts.connection.close(() => Promise.all([...this.running].map((c) => c.stop())));
  }

  async handBack(): Promise<void> {
    for (const consumption of this.running) consumption.handBack?.();
    await this.parts.connection.abandon();
  }

  /** Remembered until stopped, so close() stops it first. */
  private track(consumption: Consumption): Consumption {
    const tracked: Consumption = {
      stop: async () => {
        await consumption.stop();
        this.running.delete(tracked);
      },
      handBack: () => consumption.handBack?.(),
    };
    this.running.add(tracked);
    return tracked;
  }
}
