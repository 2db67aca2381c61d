/**
 * The bus between the outbox relay and the listeners. Two implementations share
 * this interface: JetStream (production, any number of processes) and an
 * in-process bus (the embedded default, one process running every role).
 */

/** One row of the order_events outbox as it travels on the bus. */
export interface BusEvent {
  /** Event id (UUID); the idempotency key every consumer uses. */
  id: string;
  /** e.g. OrderPlaced, OrderConfirmed, InvoiceIssued, OrderStateChanged. */
  type: string;
  orderId: string;
  /** ISO 8601. */
  occurredAt: string;
  payload: Record<string, unknown>;
  /**
   * Absent on the first publication; n when an admin has had the event
   * published again for the n-th time (a dead-letter replay). Consumers that
   * handled it find their inbox row; live feeds skip it.
   */
  replay?: number;
  /**
   * On a dead-letter replay: the consumers that gave up on the event. Every
   * other consumer acknowledges it without work. Absent: every consumer.
   */
  replayFor?: string[];
}

/** The bus's duplicate-detection key: the event id, plus the replay for a deliberate re-publication. */
export function publicationId(event: Pick<BusEvent, "id" | "replay">): string {
  return event.replay ? `${event.id}:replay-${event.replay}` : event.id;
}

/** The bus's answer for one event of a publish: each event is answered on its own. */
export type Publication =
  | { ok: true; sequence: number }
  | {
      ok: false;
      error: Error;
      /** A retry cannot succeed (the event is larger than the stream allows, say): the relay parks it. */
      lasting: boolean;
    };

export interface Delivery {
  event: BusEvent;
  /** 1 on the first delivery, 2 on the first redelivery, ... */
  attempt: number;
  /** Position in the stream: increases with publish order, never reused. */
  sequence: number;
}

/** What a consumer tells the bus after handling a delivery. */
export type Outcome = { kind: "done" } | { kind: "retry"; delayMs: number };

interface ConsumerBase {
  /** Durable consumer name without the prefix, e.g. "finance". */
  name: string;
  /**
   * The event types it handles; absent: every type. The bus delivers only
   * these where it can (JetStream 2.10 filters on each type, 2.9 on one
   * only): the handler still acknowledges any other type it is given.
   */
  types?: readonly string[];
}

/**
 * Every event of the stream is handed over, from the first one ever published
 * when the consumer is new (a listener that starts late catches up), then
 * each new one. At least once: the same event may come again.
 */
export interface SingleConsumerSpec extends ConsumerBase {
  handle(delivery: Delivery): Promise<Outcome>;
  /** How many deliveries may be in flight at once. Default 1. */
  concurrency?: number;
}

/**
 * The same deliveries, handed over in batches of what is waiting: never held
 * back to fill a batch, one batch at a time per consumer and process, in
 * stream order inside a batch (a retried delivery comes back in a later one).
 */
export interface BatchConsumerSpec extends ConsumerBase {
  /** One outcome per delivery, in the batch's order; a throw retries them all after a second. */
  handleBatch(deliveries: Delivery[]): Promise<Outcome[]>;
  /** Most deliveries in one batch. Default 64. */
  batchSize?: number;
  /**
   * How long a batch's first delivery waits for others to join it, when
   * nothing is being handled: fewer, larger transactions for a consumer off
   * the orders' critical path. Default 0: a batch is never held back.
   */
  gatherMs?: number;
}

export type ConsumerSpec = SingleConsumerSpec | BatchConsumerSpec;

export const defaultBatchSize = 64;

export interface TailSpec {
  /** Event types to receive. */
  types: string[];
  /** Start after this stream sequence; without it, only events published from now on. */
  afterSequence?: number;
}

export interface ReplaySpec {
  /** Event types to read. */
  types: string[];
  /** Only this order's events. */
  orderId?: string;
  /** Read the events after this stream sequence... */
  afterSequence: number;
  /** ...up to and including this one, which must already be in the stream. */
  untilSequence: number;
  /** Events fetched at a time; the next page is fetched when the reader has taken this one. Default 200. */
  pageSize?: number;
}

/** A durable consumer's backlog: what the console and /metrics show as its lag. */
export interface ConsumerBacklog {
  /** Durable consumer name without the prefix, e.g. "finance". */
  consumer: string;
  /** Events of its filters the bus has not handed to it yet. */
  waiting: number;
  /** Handed over and not acknowledged yet (being handled, or held by a process that died). */
  inFlight: number;
}

export interface Consumption {
  /** Stops taking new deliveries and waits for the ones in flight. */
  stop(): Promise<void>;
  /**
   * When stopping takes too long (a shutdown past its bound): hands every
   * delivery still held back to the bus at once, handled or not, so other
   * processes get them now rather than after the ack wait. One whose
   * transaction commits after all comes again as a duplicate, which the
   * inbox drops.
   */
  handBack?(): void;
}

export interface Bus {
  readonly kind: "jetstream" | "in-process";
  /** Creates the stream if needed. Idempotent; safe when several processes start at once. */
  start(): Promise<void>;
  /**
   * Publishes in the given order, without waiting for one ack before the next
   * send, and answers each event on its own: its stream sequence, or why it
   * was refused (the others may still be stored). An event whose id was
   * already published inside the duplicate window (a relay that crashed
   * between publishing and marking) is not stored twice: its first sequence
   * comes back. Rejects only when nothing could be sent (a closed bus).
   */
  publish(events: BusEvent[]): Promise<Publication[]>;
  /**
   * Which of these events the stream holds already, by publication id, with
   * their sequences: asked before publishing again an event that may have
   * gone out longer ago than the duplicate window reaches.
   */
  lookup(events: BusEvent[]): Promise<Map<string, number>>;
  /** A durable consumer shared by every process that runs the same listener. */
  consume(spec: ConsumerSpec): Promise<Consumption>;
  /** An ephemeral, ordered feed for one process (live subscriptions). Never acked, never durable. */
  tail(spec: TailSpec, onEvent: (delivery: Delivery) => void): Promise<Consumption>;
  /** The stream's last sequence now (0 while it is empty). */
  position(): Promise<number>;
  /**
   * The first sequence the stream still holds: the ones before it were
   * removed by the stream's limits (its max age or size) or an operator.
   */
  firstPosition(): Promise<number>;
  /**
   * The events between two sequences, in stream order, fetched a page at a
   * time as the caller pulls, so a long history never sits in memory whole.
   */
  replay(spec: ReplaySpec): AsyncIterable<Delivery>;
  /**
   * The event the stream holds at a position; undefined when it holds none
   * there (removed, not yet published, or numbered by an earlier in-process
   * bus: it starts again at 1 after a restart).
   */
  eventAt(sequence: number): Promise<BusEvent | undefined>;
  /** Every durable consumer of the stream, whichever process runs it, by name. */
  backlog(): Promise<ConsumerBacklog[]>;
  /** Rejects when the bus does not answer (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * The shutdown bound has passed: hands back what the consumers hold (see
   * Consumption.handBack) and closes without waiting for them. Rejects when
   * the bus could not be told (it then redelivers after the ack wait).
   */
  handBack(): Promise<void>;
}
