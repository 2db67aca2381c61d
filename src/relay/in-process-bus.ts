import {
  type BatchConsumerSpec,
  type Bus,
  type BusEvent,
  type ConsumerBacklog,
  type ConsumerSpec,
  type Consumption,
  type Delivery,
  defaultBatchSize,
  type Publication,
  publicationId,
  type ReplaySpec,
  type TailSpec,
} from "./bus.ts";

/**
 * The embedded default's bus: the same contract as JetStream inside one
 * process. Every durable consumer reads the whole stream from its start; a
 * retry is rescheduled without holding back the events behind it.
 */
export class InProcessBus implements Bus {
  readonly kind = "in-process";
  private readonly stream: BusEvent[] = [];
  /** Event id → stream sequence, to answer a repeated publish with the first one. */
  private readonly published = new Map<string, number>();
  private readonly wakers = new Set<() => void>();
  /** Each running durable consumer's backlog, by name. */
  private readonly backlogs = new Map<string, () => Omit<ConsumerBacklog, "consumer">>();
  private closed = false;

  async start(): Promise<void> {}

  async publish(events: BusEvent[]): Promise<Publication[]> {
    if (this.closed) throw new Error("bus is closed");
    const sequences = events.map((event) => {
      const key = publicationId(event);
      const known = this.published.get(key);
      if (known !== undefined) return known;
      this.stream.push(event);
      this.published.set(key, this.stream.length);
      return this.stream.length;
    });
    for (const wake of this.wakers) wake();
    return sequences.map((sequence) => ({ ok: true, sequence }));
  }

  /** It remembers every id it was given, so it never stores one twice whatever the delay. */
  async lookup(events: BusEvent[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const event of events) {
      const sequence = this.published.get(publicationId(event));
      if (sequence !== undefined) found.set(publicationId(event), sequence);
    }
    return found;
  }

  async consume(spec: ConsumerSpec): Promise<Consumption> {
    if ("handleBatch" in spec) return this.consumeBatches(spec);
    const concurrency = spec.concurrency ?? 1;
    const types = spec.types && new Set(spec.types);
    const inFlight = new Set<Promise<void>>();
    const timers = new Set<NodeJS.Timeout>();
    let cursor = 0;
    let stopped = false;

    const run = (delivery: Delivery): void => {
      const job = spec
        .handle(delivery)
        .catch(() => ({ kind: "retry", delayMs: 1000 }) as const)
        .then((outcome) => {
          if (outcome.kind === "done" || stopped) return;
          const timer = setTimeout(() => {
            timers.delete(timer);
            if (!stopped) run({ ...delivery, attempt: delivery.attempt + 1 });
          }, outcome.delayMs);
          timers.add(timer);
        })
        .finally(() => {
          inFlight.delete(job);
          pump();
        });
      inFlight.add(job);
    };
    const pump = (): void => {
      while (!stopped && inFlight.size < concurrency && cursor < this.stream.length) {
        const sequence = cursor + 1;
        const event = this.stream[cursor]!;
        if (!types || types.has(event.type)) run({ event, attempt: 1, sequence });
        cursor = sequence;
      }
    };
    this.wakers.add(pump);
    this.backlogs.set(spec.name, () => ({ waiting: this.stream.length - cursor, inFlight: inFlight.size }));
    pump();
    return {
      stop: async () => {
        stopped = true;
        this.wakers.delete(pump);
        this.backlogs.delete(spec.name);
        for (const timer of timers) clearTimeout(timer);
        await Promise.all(inFlight);
      },
    };
  }

  /** What is waiting, up to the bound, one batch at a time; retries join a later batch when due. */
  private consumeBatches(spec: BatchConsumerSpec): Consumption {
    const size = Math.max(1, spec.batchSize ?? defaultBatchSize);
    const due: Delivery[] = [];
    const timers = new Set<NodeJS.Timeout>();
    let cursor = 0;
    let stopped = false;
    let running: Promise<void> | undefined;
    let handling = 0;

    const retryLater = (delivery: Delivery, delayMs: number): void => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (stopped) return;
        due.push({ ...delivery, attempt: delivery.attempt + 1 });
        wake();
      }, delayMs);
      timers.add(timer);
    };
    let gathering: NodeJS.Timeout | undefined;
    /** An idle consumer that gathers lets its first delivery wait gatherMs for others (see BatchConsumerSpec). */
    const wake = (): void => {
      if (stopped || running || gathering) return;
      if (!spec.gatherMs) {
        pump();
        return;
      }
      gathering = setTimeout(() => {
        gathering = undefined;
        pump();
      }, spec.gatherMs);
    };
    const pump = (): void => {
      if (stopped || running) return;
      const batch = due.splice(0, size);
      for (; batch.length < size && cursor < this.stream.length; cursor++)
        batch.push({ event: this.stream[cursor]!, attempt: 1, sequence: cursor + 1 });
      if (batch.length === 0) return;
      handling = batch.length;
      running = spec
        .handleBatch(batch)
        .catch(() => batch.map(() => ({ kind: "retry", delayMs: 1000 }) as const))
        .then((outcomes) => {
          batch.forEach((delivery, i) => {
            const outcome = outcomes[i] ?? { kind: "retry", delayMs: 1000 };
            if (outcome.kind === "retry" && !stopped) retryLater(delivery, outcome.delayMs);
          });
        })
        .finally(() => {
          running = undefined;
          handling = 0;
          pump();
        });
    };
    this.wakers.add(wake);
    this.backlogs.set(spec.name, () => ({
      waiting: this.stream.length - cursor + due.length,
      inFlight: handling + timers.size,
    }));
    wake();
    return {
      stop: async () => {
        stopped = true;
        this.wakers.delete(wake);
        this.backlogs.delete(spec.name);
        clearTimeout(gathering);
        for (const timer of timers) clearTimeout(timer);
        await running;
      },
    };
  }

  async tail(spec: TailSpec, onEvent: (delivery: Delivery) => void): Promise<Consumption> {
    let cursor = spec.afterSequence ?? this.stream.length;
    const pump = (): void => {
      for (; cursor < this.stream.length; cursor++) {
        const event = this.stream[cursor]!;
        if (spec.types.includes(event.type)) onEvent({ event, attempt: 1, sequence: cursor + 1 });
      }
    };
    this.wakers.add(pump);
    pump();
    return {
      stop: async () => {
        this.wakers.delete(pump);
      },
    };
  }

  async position(): Promise<number> {
    return this.stream.length;
  }

  /** It never removes an event while it runs (it forgets them all when the process ends). */
  async firstPosition(): Promise<number> {
    return 1;
  }

  async *replay(spec: ReplaySpec): AsyncIterable<Delivery> {
    const end = Math.min(spec.untilSequence, this.stream.length);
    for (let i = spec.afterSequence; i < end; i++) {
      const event = this.stream[i]!;
      if (!spec.types.includes(event.type)) continue;
      if (spec.orderId !== undefined && event.orderId !== spec.orderId) continue;
      yield { event, attempt: 1, sequence: i + 1 };
    }
  }

  async eventAt(sequence: number): Promise<BusEvent | undefined> {
    return sequence >= 1 ? this.stream[sequence - 1] : undefined;
  }

  async backlog(): Promise<ConsumerBacklog[]> {
    return [...this.backlogs]
      .map(([consumer, read]) => ({ consumer, ...read() }))
      .sort((a, b) => a.consumer.localeCompare(b.consumer));
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error("bus is closed");
  }

  /** Nothing to hand back: the outbox holds every event, and the next start hands it to the new bus. */
  async handBack(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.wakers.clear();
  }
}
