import { refuse } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Bus, Consumption, Delivery } from "../relay/bus.ts";
import type { OrderStatus } from "../statemachine/states.ts";
import { orderStateChanged } from "../statemachine/transition.ts";
import { BoundedQueue } from "./bounded-queue.ts";

export interface OrderStateChange {
  eventId: string;
  orderId: string;
  customerId: string;
  from: OrderStatus | null;
  to: OrderStatus;
  occurredAt: Date;
  /** The bus's stream position. */
  sequence: number;
}

export function toStateChange({ event, sequence }: Delivery): OrderStateChange {
  const payload = event.payload as { from: OrderStatus | null; to: OrderStatus; customerId: string };
  return {
    eventId: event.id,
    orderId: event.orderId,
    customerId: payload.customerId,
    from: payload.from,
    to: payload.to,
    occurredAt: new Date(event.occurredAt),
    sequence,
  };
}

/**
 * One tail of the bus per gateway process, fanned out to every live
 * subscription of that process: N subscribers cost one consumer, not N.
 */
export class OrderFeed {
  private readonly subscribers = new Set<(change: OrderStateChange) => void>();
  private tail: Consumption | undefined;
  /** The stream sequence up to which every change has been handed to the subscribers. */
  private position = 0;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly limits: {
      /** Changes a subscriber may have waiting before it is cut off. Default 1000. */
      buffer?: number;
      /** Live subscriptions one caller may hold at once. Default 20. */
      perCaller?: number;
    } = {},
  ) {}

  private readonly callers = new Map<string, number>();

  async start(): Promise<void> {
    this.position = await this.bus.position();
    this.tail = await this.bus.tail(
      { types: [orderStateChanged], afterSequence: this.position },
      (delivery) => {
        // A dead-letter replay publishes a change again: subscribers had it the first time.
        if (delivery.event.replay) return;
        const change = toStateChange(delivery);
        this.position = change.sequence;
        for (const deliver of this.subscribers) deliver(change);
      },
    );
  }

  /**
   * Every accepted change after `afterSequence`, then the live ones. The
   * history comes from the stream itself, so replay and live follow one
   * order: the live changes are held from the moment the replay starts, the
   * replay reads up to the position the feed had then, and the held changes
   * continue from there. No gap, no duplicate at the seam.
   */
  resume(
    afterSequence: number,
    accept: (change: OrderStateChange) => boolean,
    options: { orderId?: string; callerId?: string } = {},
  ): AsyncIterableIterator<OrderStateChange> {
    const { orderId, callerId } = options;
    const seam = this.position;
    const live = this.subscribe((change) => change.sequence > seam && accept(change), callerId);
    const bus = this.bus;
    async function* changes(): AsyncGenerator<OrderStateChange> {
      if (afterSequence < seam) {
        const history = bus.replay({
          types: [orderStateChanged],
          orderId,
          afterSequence,
          untilSequence: seam,
        });
        for await (const delivery of history) {
          if (delivery.event.replay) continue;
          const change = toStateChange(delivery);
          if (accept(change)) yield change;
        }
      }
      for await (const change of live) if (change.sequence > afterSequence) yield change;
    }
    return withCleanup(changes(), () => live.return?.());
  }

  /** Live changes the subscriber accepts, from now on. Refused (RATE_LIMITED) past the caller's limit. */
  subscribe(
    accept: (change: OrderStateChange) => boolean,
    callerId = "",
  ): AsyncIterableIterator<OrderStateChange> {
    const held = this.callers.get(callerId) ?? 0;
    if (held >= (this.limits.perCaller ?? 20))
      refuse("RATE_LIMITED", `at most ${this.limits.perCaller ?? 20} live subscriptions at once`);
    this.callers.set(callerId, held + 1);
    const queue: BoundedQueue<OrderStateChange> = new BoundedQueue(this.limits.buffer ?? 1000, () => {
      this.subscribers.delete(deliver);
      const left = (this.callers.get(callerId) ?? 1) - 1;
      if (left > 0) this.callers.set(callerId, left);
      else this.callers.delete(callerId);
    });
    const deliver = (change: OrderStateChange) => {
      if (accept(change)) queue.push(change);
    };
    this.subscribers.add(deliver);
    return queue;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  async stop(): Promise<void> {
    await this.tail?.stop();
    this.logger.debug({ subscribers: this.subscribers.size }, "order feed stopped");
  }
}

/**
 * An async generator waiting for its next value cannot be returned until that
 * value comes; a client that unsubscribes from a quiet order would stay
 * registered. Running the cleanup first ends the queue the generator waits on.
 */
export function withCleanup<T>(source: AsyncGenerator<T>, cleanup: () => unknown): AsyncIterableIterator<T> {
  let cleaned = false;
  const clean = async () => {
    if (!cleaned) {
      cleaned = true;
      await cleanup();
    }
  };
  return {
    next: async () => {
      const result = await source.next();
      if (result.done) await clean();
      return result;
    },
    return: async () => {
      await clean();
      await source.return(undefined);
      return { value: undefined, done: true };
    },
    throw: async (error: unknown) => {
      await clean();
      return source.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
