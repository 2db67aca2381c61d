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
    /** Changes a subscriber may have waiting before it is cut off. Default 1000. */
    private readonly bufferLimit = 1000,
  ) {}

  async start(): Promise<void> {
    this.position = await this.bus.position();
    this.tail = await this.bus.tail(
      { types: [orderStateChanged], afterSequence: this.position },
      (delivery) => {
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
  async *resume(
    afterSequence: number,
    accept: (change: OrderStateChange) => boolean,
    orderId?: string,
  ): AsyncGenerator<OrderStateChange> {
    const seam = this.position;
    const live = this.subscribe((change) => change.sequence > seam && accept(change));
    try {
      if (afterSequence < seam) {
        const history = this.bus.replay({
          types: [orderStateChanged],
          orderId,
          afterSequence,
          untilSequence: seam,
        });
        for await (const delivery of history) {
          const change = toStateChange(delivery);
          if (accept(change)) yield change;
        }
      }
      for await (const change of live) if (change.sequence > afterSequence) yield change;
    } finally {
      await live.return?.();
    }
  }

  subscribe(accept: (change: OrderStateChange) => boolean): AsyncIterableIterator<OrderStateChange> {
    const queue: BoundedQueue<OrderStateChange> = new BoundedQueue(this.bufferLimit, () => {
      this.subscribers.delete(deliver);
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
