import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  type MsgRequest,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import {
  type Bus,
  type BusEvent,
  type ConsumerSpec,
  type Consumption,
  type Delivery,
  type Publication,
  publicationId,
  type ReplaySpec,
  type TailSpec,
} from "./bus.ts";

export interface BusLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface JetStreamBusOptions {
  url: string;
  /** A plain token (letters, digits, underscore) that namespaces the stream, subjects and consumers. */
  prefix: string;
  /** How long JetStream remembers a message id to drop a repeated publish. Default 120000 ms. */
  duplicateWindowMs?: number;
  logger?: BusLogger;
}

const quiet: BusLogger = { info() {}, warn() {}, error() {} };

/** Server code for "stream name already in use with a different configuration". */
const streamNameInUse = 10058;
const pingTimeoutMs = 2_000;
/** Orders whose subjects lookup() walks at once. */
const lookupConcurrency = 16;
const restartDelayMs = 1_000;
/** A replay that gets nothing this long (the server down, say) fails rather than waits for ever. */
const replayStallMs = 30_000;
const replayRetryMs = 250;
/** Under ack_wait (30s), so a long handler does not get its message redelivered elsewhere. */
const workingEveryMs = 10_000;

export class JetStreamBus implements Bus {
  readonly kind = "jetstream" as const;
  readonly stream: string;
  readonly subjects: string;
  private readonly url: string;
  private readonly prefix: string;
  private readonly log: BusLogger;
  readonly duplicateWindowMs: number;
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private jsm?: JetStreamManager;
  private readonly running = new Set<Consumption>();
  private connecting?: Promise<void>;
  private closing?: Promise<void>;

  constructor(options: JetStreamBusOptions) {
    if (!/^\w+$/.test(options.prefix)) throw new Error(`invalid bus prefix: ${options.prefix}`);
    this.url = options.url;
    this.prefix = options.prefix;
    this.log = options.logger ?? quiet;
    this.duplicateWindowMs = options.duplicateWindowMs ?? 120_000;
    this.stream = `${options.prefix}_events`;
    this.subjects = `${options.prefix}.events.>`;
  }

  async start(): Promise<void> {
    if (this.closing) throw new Error("bus closed");
    // One connection per bus, even when start() is called again or twice at once.
    this.connecting ??= this.connect().catch((err) => {
      this.connecting = undefined;
      throw err;
    });
    await this.connecting;
    await this.ensureStream();
  }

  async publish(events: BusEvent[]): Promise<Publication[]> {
    const js = this.client().js;
    // Every publish goes out before the first ack is awaited; the socket keeps them in order.
    const acks = events.map(async (event) =>
      js.publish(this.subject(event), JSON.stringify(event), { msgID: publicationId(event) }),
    );
    // A repeat inside the duplicate window answers with the sequence the event was first stored at.
    return (await Promise.allSettled(acks)).map((r) =>
      r.status === "fulfilled" ? { ok: true, sequence: r.value.seq } : refusal(r.reason),
    );
  }

  async lookup(events: BusEvent[]): Promise<Map<string, number>> {
    const { jsm } = this.client();
    const wanted = new Set(events.map(publicationId));
    const found = new Map<string, number>();
    // One walk per order through its subjects, a few orders at a time: an order has tens of events,
    // and this runs only for events old enough to have left the duplicate window, which is rare.
    const walk = async (orderId: string) => {
      const subject = `${this.prefix}.events.*.${orderId}`;
      for (let seq = 1; ; ) {
        // The server (2.9+) answers next_by_subj on this API too; the client's types only allow it on direct gets.
        const next = { seq, next_by_subj: subject } as unknown as MsgRequest;
        const msg = await jsm.streams.getMessage(this.stream, next);
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

  async consume(spec: ConsumerSpec): Promise<Consumption> {
    const { nc } = this.client();
    const durable = `${this.prefix}_${spec.name}`;
    const limit = Math.max(1, spec.concurrency ?? 1);
    const inflight = new Set<Promise<void>>();
    // Created here so a missing stream or a refused config fails the caller, not a background loop.
    let consumer: Consumer | undefined = await this.ensureConsumer(durable);

    const feed = new Feed(
      nc,
      this.log,
      { consumer: durable },
      {
        open: async () => {
          consumer ??= await this.ensureConsumer(durable);
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
          const job = this.deliver(spec, msg, durable).finally(() => inflight.delete(job));
          inflight.add(job);
          if (inflight.size >= limit) await Promise.race(inflight);
        },
        // The client keeps pulling from a consumer that no longer exists; end the feed so it is re-created.
        gone: (type) => type === "consumer_deleted" || type === "consumer_not_found",
      },
    );

    const consumption: Consumption = {
      stop: async () => {
        await feed.stop();
        await Promise.all(inflight);
        this.running.delete(consumption);
      },
    };
    this.running.add(consumption);
    return consumption;
  }

  async tail(spec: TailSpec, onEvent: (delivery: Delivery) => void): Promise<Consumption> {
    const { nc, js, jsm } = this.client();
    if (spec.types.length === 0) return { stop: async () => {} };
    const types = new Set(spec.types);
    const filter = spec.types.length === 1 ? `${this.prefix}.events.${spec.types[0]}.>` : this.subjects;
    // Not DeliverPolicy.New: when nats.js re-creates an ordered consumer that has seen nothing yet,
    // it restarts from sequence 1 and would replay the whole stream. A start sequence survives that.
    let next = spec.afterSequence ?? (await jsm.streams.info(this.stream)).state.last_seq;
    next += 1;
    let consumer: Consumer | undefined;
    const open = async () => {
      consumer = await js.consumers.get(this.stream, { filter_subjects: filter, opt_start_seq: next });
      return consumer.consume();
    };
    // Opened here so a missing stream fails the caller, not a background loop.
    let first: ConsumerMessages | undefined = await open();

    const feed = new Feed(
      nc,
      this.log,
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
            this.log.error(
              { subject: msg.subject, sequence: msg.seq },
              "bus: tail skipped a message that is not an event",
            );
            return;
          }
          if (!types.has(event.type)) return;
          try {
            onEvent({ event, attempt: 1, sequence: msg.info.streamSequence });
          } catch (err) {
            this.log.error({ err, eventId: event.id }, "bus: tail listener threw");
          }
        },
      },
    );

    const consumption: Consumption = {
      stop: async () => {
        await feed.stop();
        // The server would drop it after 5 minutes idle; one tail per live subscription adds up.
        consumer?.delete().catch(() => {});
        this.running.delete(consumption);
      },
    };
    this.running.add(consumption);
    return consumption;
  }

  async position(): Promise<number> {
    return (await this.client().jsm.streams.info(this.stream)).state.last_seq;
  }

  async *replay(spec: ReplaySpec): AsyncIterable<Delivery> {
    const types = new Set(spec.types);
    const filter =
      spec.types.length === 1
        ? `${this.prefix}.events.${spec.types[0]}.${spec.orderId ?? ">"}`
        : this.subjects;
    // Where the replay ends is known before the first fetch: a resume with nothing to replay returns at
    // once, and a fetch that comes back empty or fails (a reconnect, a server restart) is no reason to stop.
    let end = await this.lastMatching(filter, spec.untilSequence);
    let read = spec.afterSequence;
    if (end <= read) return;
    const consumer = await this.client().js.consumers.get(this.stream, {
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
          this.log.warn({ err, stream: this.stream, after: read }, "bus: replay fetch failed, trying again");
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
        end = await this.lastMatching(filter, spec.untilSequence).catch(() => end);
      }
    } finally {
      consumer.delete().catch(() => {});
    }
  }

  async eventAt(sequence: number): Promise<BusEvent | undefined> {
    if (sequence < 1) return undefined;
    const stored = await this.client().jsm.streams.getMessage(this.stream, { seq: sequence });
    return stored ? parse(stored) : undefined;
  }

  /** The last sequence that matches `filter`, at most `until`: `until` itself when a later one matches. */
  private async lastMatching(filter: string, until: number): Promise<number> {
    const last = await this.client().jsm.streams.getMessage(this.stream, { last_by_subj: filter });
    return Math.min(last?.seq ?? 0, until);
  }

  async ping(): Promise<void> {
    const { jsm } = this.client();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("JetStream did not answer")), pingTimeoutMs);
    });
    try {
      await Promise.race([jsm.getAccountInfo(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.running].map((c) => c.stop()));
      const nc = this.nc;
      if (nc && !nc.isClosed()) await nc.drain();
    })();
    return this.closing;
  }

  private async connect(): Promise<void> {
    const nc = await connect({
      servers: this.url,
      name: `order-gateway:${this.prefix}`,
      maxReconnectAttempts: -1,
    });
    try {
      // Fails when JetStream is not enabled for the account.
      this.jsm = await jetstreamManager(nc);
    } catch (err) {
      await nc.close();
      throw err;
    }
    this.nc = nc;
    this.js = jetstream(nc);
    this.watchConnection(nc).catch(() => {});
  }

  private client(): { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager } {
    if (this.closing) throw new Error("bus closed");
    if (!this.nc || !this.js || !this.jsm) throw new Error("bus not started");
    if (this.nc.isClosed()) throw new Error("NATS connection closed");
    return { nc: this.nc, js: this.js, jsm: this.jsm };
  }

  private subject(event: BusEvent): string {
    // A dot or wildcard would silently land the event on another subject (or none).
    for (const token of [event.type, event.orderId]) {
      if (!/^[^.*>\s]+$/.test(token))
        throw new Error(`event ${event.id}: "${token}" cannot be a subject token`);
    }
    return `${this.prefix}.events.${event.type}.${event.orderId}`;
  }

  private async ensureStream(): Promise<void> {
    const { jsm } = this.client();
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

  private async ensureConsumer(durable: string): Promise<Consumer> {
    const { js, jsm } = this.client();
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

  private async deliver(spec: ConsumerSpec, msg: JsMsg, durable: string): Promise<void> {
    const event = parse(msg);
    if (!event) {
      // Redelivering it would fail the same way forever.
      this.log.error(
        { consumer: durable, subject: msg.subject, sequence: msg.info.streamSequence },
        "bus: dropped a message that is not an event",
      );
      settle(msg, "term", this.log);
      return;
    }
    const delivery: Delivery = {
      event,
      attempt: msg.info.deliveryCount,
      sequence: msg.info.streamSequence,
    };
    const working = setInterval(() => settle(msg, "working", this.log), workingEveryMs);
    try {
      const outcome = await spec.handle(delivery);
      if (outcome.kind === "done") settle(msg, "ack", this.log);
      else settle(msg, "nak", this.log, outcome.delayMs);
    } catch (err) {
      this.log.error({ err, consumer: durable, eventId: event.id }, "bus: handler threw, retrying in 1s");
      settle(msg, "nak", this.log, 1_000);
    } finally {
      clearInterval(working);
    }
  }

  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") this.log.warn({ status }, "bus: disconnected from NATS");
      else if (status.type === "reconnect") this.log.info({ status }, "bus: reconnected to NATS");
      else if (status.type === "error") this.log.error({ status }, "bus: NATS error");
    }
  }
}

/** JetStream's code for "message size exceeds maximum allowed" (the stream's max_msg_size). */
const messageTooLarge = 10054;

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

function parse(msg: { json(): unknown }): BusEvent | undefined {
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

interface FeedHooks {
  open(): Promise<ConsumerMessages>;
  each(msg: JsMsg, stopping: boolean): Promise<void> | void;
  /** Notifications after which this consumer will never deliver again. */
  gone?(type: string): boolean;
}

/**
 * Iterates a consumer until stopped. The iterator can end without being asked
 * (connection closed and reopened, consumer deleted): it is then opened again.
 */
class Feed {
  private stopping = false;
  private current?: ConsumerMessages;
  private wake?: () => void;
  private readonly done: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: BusLogger,
    private readonly what: object,
    private readonly hooks: FeedHooks,
  ) {
    this.done = this.run();
  }

  stop(): Promise<void> {
    this.stopping = true;
    this.current?.stop();
    this.wake?.();
    return this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopping && !this.nc.isClosed()) {
      try {
        const messages = await this.hooks.open();
        this.current = messages;
        if (this.stopping) messages.stop();
        this.watch(messages).catch(() => {});
        // stop() lets the messages already buffered come through first; each() is told to skip them.
        for await (const msg of messages) await this.hooks.each(msg, this.stopping);
      } catch (err) {
        this.log.warn({ err, ...this.what }, "bus: consumer failed");
      }
      if (this.stopping || this.nc.isClosed()) return;
      this.log.warn(this.what, "bus: consumer ended, opening it again");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, restartDelayMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const note of messages.status()) {
      if (this.hooks.gone?.(note.type)) {
        this.log.warn({ ...this.what, note }, "bus: consumer is gone");
        messages.stop();
      }
    }
  }
}
