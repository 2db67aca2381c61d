import { refuse } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Bus, Consumption, Delivery } from "../relay/bus.ts";
import type { OrderStatus } from "../statemachine/states.ts";
import { orderStateChanged } from "../statemachine/transition.ts";
import { BoundedQueue } from "./bounded-queue.ts";
import { OrderVersions } from "./order-versions.ts";

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
 * Whose changes a subscriber gets: with `orderId`, that order's; with
 * `customerId`, that customer's orders'; with both, that order's only while
 * it is that customer's; with neither, every order's (admins, partners).
 */
export interface Audience {
  orderId?: string;
  customerId?: string;
}

export function inAudience(audience: Audience, change: OrderStateChange): boolean {
  return (
    (audience.orderId === undefined || audience.orderId === change.orderId) &&
    (audience.customerId === undefined || audience.customerId === change.customerId)
  );
}

type Deliver = (change: OrderStateChange) => void;

/**
 * The live subscribers, found from a change by its order and its customer:
 * a change costs the subscribers it goes to, not a test of every subscriber.
 * Each subscriber sits in one place: its order's set, else its customer's,
 * else the set of those who see every order.
 */
class SubscriberIndex {
  private readonly byOrder = new Map<string, Set<Deliver>>();
  private readonly byCustomer = new Map<string, Set<Deliver>>();
  private readonly everyOrder = new Set<Deliver>();
  size = 0;

  add(audience: Audience, deliver: Deliver): () => void {
    const [map, key] = this.placeOf(audience);
    let set = this.everyOrder;
    if (map && key !== undefined) {
      set = map.get(key) ?? new Set();
      map.set(key, set);
    }
    set.add(deliver);
    this.size++;
    return () => {
      if (!set.delete(deliver)) return;
      this.size--;
      if (map && key !== undefined && set.size === 0) map.delete(key);
    };
  }

  deliver(change: OrderStateChange): void {
    for (const deliver of this.byOrder.get(change.orderId) ?? []) deliver(change);
    for (const deliver of this.byCustomer.get(change.customerId) ?? []) deliver(change);
    for (const deliver of this.everyOrder) deliver(change);
  }

  private placeOf(audience: Audience): [Map<string, Set<Deliver>> | undefined, string | undefined] {
    if (audience.orderId !== undefined) return [this.byOrder, audience.orderId];
    if (audience.customerId !== undefined) return [this.byCustomer, audience.customerId];
    return [undefined, undefined];
  }
}

/**
 * An order's last shared state as of a stream position, as the outbox
 * recorded it (undefined when nothing of it was published up to there).
 */
export type StatusAt = (orderId: string, sequence: number) => Promise<OrderStatus | undefined>;

/**
 * One tail of the bus per gateway process, fanned out to every live
 * subscription of that process: N subscribers cost one consumer, not N.
 * A change goes to its order's, its customer's and the all-orders
 * subscribers through an index, and is the same object for each of them,
 * so what is derived from it can be shared (the schema reads its order
 * once). A change the stream holds twice is handed on once.
 */
export class OrderFeed {
  private readonly subscribers = new SubscriberIndex();
  private tail: Consumption | undefined;
  /** The stream sequence up to which every change has been handed to the subscribers. */
  private position = 0;
  private readonly versions: OrderVersions;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
    private readonly limits: {
      /** Changes a subscriber may have waiting before it is cut off. Default 1000. */
      buffer?: number;
      /** Live subscriptions one caller may hold at once. Default 20. */
      perCaller?: number;
      /**
       * Orders whose last state the feed (and each resume) remembers, to tell a change the stream holds
       * twice. A repeat follows its first copy closely (the relay publishes the oldest rows first). Default
       * 10000.
       */
      recentOrders?: number;
    } = {},
  ) {
    this.versions = new OrderVersions(this.recentOrders);
  }

  private get recentOrders(): number {
    return this.limits.recentOrders ?? 10_000;
  }

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
        if (!this.versions.advance(change.orderId, change.to)) {
          this.logger.warn(
            { eventId: change.eventId, orderId: change.orderId, to: change.to, sequence: change.sequence },
            "order feed: dropped a change the stream holds twice",
          );
          return;
        }
        this.subscribers.deliver(change);
      },
    );
  }

  /**
   * Every change of the audience after `afterSequence`, then the live ones. The
   * history comes from the stream itself, so replay and live follow one
   * order: the live changes are held from the moment the replay starts, the
   * replay reads up to the position the feed had then, and the held changes
   * continue from there. No gap, no duplicate at the seam.
   *
   * A change the stream holds twice is handed on once: each order's state as
   * of `afterSequence` (from `statusAt`, the client has seen it) and every
   * change handed on since are remembered, and only a later state goes out.
   */
  resume(
    afterSequence: number,
    audience: Audience,
    options: { callerId?: string; statusAt?: StatusAt } = {},
  ): AsyncIterableIterator<OrderStateChange> {
    const { callerId, statusAt } = options;
    const { orderId } = audience;
    const seam = this.position;
    const live = this.subscribe(audience, callerId);
    const bus = this.bus;
    const handedOn = new OrderVersions(this.recentOrders);
    const isNew = async (change: OrderStateChange): Promise<boolean> => {
      if (statusAt && !handedOn.has(change.orderId)) {
        const known = await statusAt(change.orderId, afterSequence);
        if (known) handedOn.advance(change.orderId, known);
      }
      return handedOn.advance(change.orderId, change.to);
    };
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
          if (inAudience(audience, change) && (await isNew(change))) yield change;
        }
      }
      for await (const change of live)
        if (change.sequence > seam && change.sequence > afterSequence && (await isNew(change))) yield change;
    }
    return withCleanup(changes(), () => live.return?.());
  }

  /**
   * Whether the stream holds this event's first publication at this position,
   * so that a resume from there neither skips changes nor hands on unrelated
   * ones. It does not when the embedded in-process bus restarted since (its
   * positions start again at 1 while the outbox keeps the old ones), nor when
   * the stream has dropped it (limits set by an operator).
   */
  async holds(sequence: number, eventId: string): Promise<boolean> {
    const event = await this.bus.eventAt(sequence);
    return event?.id === eventId && !event.replay;
  }

  /** Whether the stream has removed this position by its limits (its max age or size) or an operator. */
  async removed(sequence: number): Promise<boolean> {
    return sequence < (await this.bus.firstPosition());
  }

  /** Live changes of the audience, from now on. Refused (RATE_LIMITED) past the caller's limit. */
  subscribe(audience: Audience, callerId = ""): AsyncIterableIterator<OrderStateChange> {
    const held = this.callers.get(callerId) ?? 0;
    if (held >= (this.limits.perCaller ?? 20))
      refuse("RATE_LIMITED", `at most ${this.limits.perCaller ?? 20} live subscriptions at once`);
    this.callers.set(callerId, held + 1);
    const queue: BoundedQueue<OrderStateChange> = new BoundedQueue(this.limits.buffer ?? 1000, () => leave());
    // The index finds the audience; the check keeps a customer's subscription to their own changes whatever it holds.
    const unindex = this.subscribers.add(audience, (change) => {
      if (inAudience(audience, change)) queue.push(change);
    });
    // Once only: a subscriber cut off for being slow is returned by its client afterwards.
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      unindex();
      const remaining = (this.callers.get(callerId) ?? 1) - 1;
      if (remaining > 0) this.callers.set(callerId, remaining);
      else this.callers.delete(callerId);
    };
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
