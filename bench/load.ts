/**
 * The load generator: digital orders (EBOOK-1) placed and paid over GraphQL,
 * their changes watched over graphql-ws, driven closed-loop (N clients, each
 * waits for its order's COMPLETED before the next) or open-loop (orders
 * started on a schedule, whatever the completions do). It runs in the bench
 * process; the service in its own (service.ts).
 */
import { type Client, createClient } from "graphql-ws";
import WebSocket from "ws";
import { now, type orderClient, type StateChange, sleep, stateChangesDoc, within } from "./support.ts";

/** One graphql-ws connection carrying any number of subscriptions. */
export function connection(url: string, token: string): Client & { failure: () => unknown } {
  let failure: unknown;
  const client = createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
    on: {
      error: (error) => {
        failure ??= error;
      },
    },
  });
  return Object.assign(client, { failure: () => failure });
}

/** Subscribes on `client`; resolves once the first message arrives or after `settleMs` (a subscribe has no ack). */
export function follow(
  client: Client,
  variables: Record<string, unknown>,
  onChange: (change: StateChange) => void,
  onError: (error: unknown) => void,
): () => void {
  return client.subscribe(
    { query: stateChangesDoc, variables },
    {
      next: ({ data, errors }) => {
        if (errors) onError(errors);
        else if (data) onChange((data as { orderStateChanged: StateChange }).orderStateChanged);
      },
      error: onError,
      complete: () => {},
    },
  );
}

/** When each order was first seen in each state, and promises for states not seen yet. */
export class Seen {
  private at = new Map<string, Map<string, number>>();
  private waiters = new Map<string, () => void>();
  changes = 0;

  record(change: StateChange): void {
    this.changes++;
    let states = this.at.get(change.orderId);
    if (!states) {
      states = new Map();
      this.at.set(change.orderId, states);
    }
    if (states.has(change.to)) return;
    states.set(change.to, now());
    const key = `${change.orderId}/${change.to}`;
    this.waiters.get(key)?.();
    this.waiters.delete(key);
  }

  when(orderId: string, to: string): number | undefined {
    return this.at.get(orderId)?.get(to);
  }

  until(orderId: string, to: string, timeoutMs: number): Promise<number> {
    const at = this.when(orderId, to);
    if (at !== undefined) return Promise.resolve(at);
    return within(
      `${to} of order ${orderId}`,
      timeoutMs,
      new Promise<number>((resolve) => {
        this.waiters.set(`${orderId}/${to}`, () => resolve(this.when(orderId, to)!));
      }),
    );
  }
}

/** One subscription to every order the caller sees, recording into `seen`. */
export function watchAll(url: string, token: string, seen: Seen) {
  const client = connection(url, token);
  let failure: unknown;
  const unsubscribe = follow(
    client,
    {},
    (c) => seen.record(c),
    (e) => {
      failure ??= e;
    },
  );
  return {
    failure: () => failure ?? client.failure(),
    close: async () => {
      unsubscribe();
      await client.dispose();
    },
  };
}

/** `n` operator dashboards: admin subscriptions to every order, each on its own connection; counts what they get. */
export function dashboards(url: string, adminToken: string, n: number) {
  let received = 0;
  let failure: unknown;
  const open = Array.from({ length: n }, () => {
    const client = connection(url, adminToken);
    const unsubscribe = follow(
      client,
      {},
      () => {
        received++;
      },
      (e) => {
        failure ??= e;
      },
    );
    return { client, unsubscribe };
  });
  return {
    received: () => received,
    failure: () => failure ?? open.find((o) => o.client.failure())?.client.failure(),
    close: async () => {
      for (const o of open) o.unsubscribe();
      await Promise.all(open.map((o) => o.client.dispose()));
    },
  };
}

export type Orders = ReturnType<typeof orderClient>;

export interface OrderTiming {
  orderId: string;
  /** confirmPayment sent. */
  confirmSent: number;
  /** COMPLETED seen on the subscription; undefined if not within the wait. */
  completed?: number;
}

/**
 * Closed loop: `clients` concurrent clients, each placing and paying one
 * order and waiting for its COMPLETED before the next, for `durationMs`.
 * Counts the orders completed within the window; returns once every order
 * started in it has completed.
 */
export async function closedLoop(
  orders: Orders,
  seen: Seen,
  {
    clients,
    durationMs,
    orderTimeoutMs = 30_000,
  }: { clients: number; durationMs: number; orderTimeoutMs?: number },
): Promise<{
  started: number;
  completed: number;
  failures: number;
  firstFailure: unknown;
  elapsedMs: number;
  latencies: number[];
}> {
  const t0 = now();
  const end = t0 + durationMs;
  let started = 0;
  let completed = 0;
  let failures = 0;
  let firstFailure: unknown;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (now() < end) {
        const t = now();
        started++;
        try {
          const id = await orders.place();
          await orders.confirm(id);
          const at = await seen.until(id, "COMPLETED", orderTimeoutMs);
          if (at <= end) {
            completed++;
            latencies.push(at - t);
          }
        } catch (error) {
          // An overloaded service refuses or times out: counted, and the client goes on after a pause.
          failures++;
          firstFailure ??= error;
          await sleep(100);
        }
      }
    }),
  );
  return { started, completed, failures, firstFailure, elapsedMs: durationMs, latencies };
}

/**
 * Open loop: an order started every 1/rate seconds (fixed interval) for
 * `durationMs`, each placed then paid at once, whatever earlier orders do;
 * then waits up to `drainMs` for the last COMPLETED. Latency: confirmPayment
 * sent → COMPLETED seen by the subscriber.
 */
export async function openLoop(
  orders: Orders,
  seen: Seen,
  { rate, durationMs, drainMs }: { rate: number; durationMs: number; drainMs: number },
): Promise<{ timings: OrderTiming[]; failures: number; lateStarts: number }> {
  const count = Math.max(1, Math.round((rate * durationMs) / 1000));
  const interval = 1000 / rate;
  const timings: OrderTiming[] = [];
  let failures = 0;
  let lateStarts = 0;
  const t0 = now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = t0 + i * interval;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    else if (wait < -interval) lateStarts++;
    inFlight.push(
      (async () => {
        const id = await orders.place();
        const timing: OrderTiming = { orderId: id, confirmSent: now() };
        timings.push(timing);
        await orders.confirm(id);
      })().catch(() => {
        failures++;
      }),
    );
  }
  await Promise.all(inFlight);
  const deadline = now() + drainMs;
  await Promise.all(
    timings.map(async (t) => {
      const left = deadline - now();
      t.completed = await seen.until(t.orderId, "COMPLETED", Math.max(1, left)).catch(() => undefined);
    }),
  );
  return { timings, failures, lateStarts };
}

/** Latencies of an open-loop run; an order not completed within the wait counts as +∞ (it is in the tail). */
export function latencies(timings: OrderTiming[]): number[] {
  return timings.map((t) =>
    t.completed === undefined ? Number.POSITIVE_INFINITY : t.completed - t.confirmSent,
  );
}
