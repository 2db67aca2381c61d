import { print } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { CancelOrder, ConfirmPayment, OrderStateChanged, PlaceOrder } from "./operations.ts";
import { ReportBooking, ReportShipment } from "./saga.ts";
import { type GraphQLResponse, gql, tokenFor, tokens } from "./service.ts";

/** What an order of the load is and how it should end. */
export interface PlannedOrder {
  key: string;
  kind: "digital" | "mixed";
  /** Cancelled by its customer once paid, before the carrier and the travel partner report. */
  cancel: boolean;
  customer: "customer-1" | "customer-2";
  /** Default: the customer's address. */
  email?: string;
}

export interface DrivenOrder extends PlannedOrder {
  id: string;
  /** When the mutations that were its to make all succeeded. */
  drivenAt?: number;
}

const skus = { digital: ["EBOOK-1"], mixed: ["EBOOK-1", "MUG-1", "TRIP-LIS", "BOX-MONTHLY"] };

/**
 * n orders: half digital, half mixed (a physical, a travel and a subscription
 * line beside the e-book); one mixed order in five is cancelled once paid.
 * Two customers take turns, so each subscriber may see some orders and not others.
 */
export function planOrders(n: number, tag: string): PlannedOrder[] {
  return Array.from({ length: n }, (_, i) => {
    const kind = i % 2 === 0 ? "digital" : "mixed";
    return {
      key: `${tag}-${i}`,
      kind,
      cancel: kind === "mixed" && i % 10 === 1,
      customer: i % 4 < 2 ? "customer-1" : "customer-2",
    };
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls until it is answered without a transport failure or an internal
 * error, as a client with an idempotency key does (a gateway that lost its
 * database, a process restarting): the same input, so never twice in effect.
 */
async function persist<T>(
  what: string,
  call: () => Promise<GraphQLResponse<T>>,
  accept: (r: GraphQLResponse<T>) => boolean = (r) => !r.errors?.length,
  onFail: () => void = () => {},
  timeoutMs = 180_000,
): Promise<GraphQLResponse<T>> {
  const deadline = Date.now() + timeoutMs;
  let wait = 100;
  let last: unknown;
  for (;;) {
    try {
      const result = await call();
      if (accept(result)) return result;
      last = result.errors;
    } catch (error) {
      last = error;
    }
    onFail();
    if (Date.now() > deadline) throw new Error(`${what}: gave up: ${JSON.stringify(last)}`);
    await sleep(wait);
    wait = Math.min(wait * 2, 2_000);
  }
}

const code = (r: GraphQLResponse<unknown>) => r.errors?.[0]?.extensions?.code;

/** Drives one order through the gateways as its customer, the payment provider and the partners would. */
export async function driveOrder(
  gateways: string[],
  plan: PlannedOrder,
  n: number,
  stats?: DriveStats,
): Promise<DrivenOrder> {
  const failed = () => {
    if (stats) stats.mutationFailures++;
  };
  const url = (i: number) => `${gateways[(n + i) % gateways.length]}/graphql`;
  const customer = await tokenFor({ role: "customer", id: plan.customer });
  const placed = await persist(
    `place ${plan.key}`,
    () =>
      gql(
        url(0),
        PlaceOrder,
        {
          input: {
            lines: skus[plan.kind].map((sku) => ({ sku, quantity: 1 })),
            contactEmail: plan.email ?? `${plan.customer}@example.com`,
            idempotencyKey: plan.key,
          },
        },
        customer,
      ),
    undefined,
    failed,
  );
  const order = placed.data!.placeOrder.order;
  const driven: DrivenOrder = { ...plan, id: order.id };
  const payments = await tokens.payments();
  // A retry after an answer lost on the way finds the order paid already: INVALID_TRANSITION is success then.
  await persist(
    `confirm ${plan.key}`,
    () =>
      gql(
        url(1),
        ConfirmPayment,
        {
          input: {
            orderId: order.id,
            paymentReference: `psp-${plan.key}`,
            amount: order.total.amount,
            currency: order.total.currency,
          },
        },
        payments,
      ),
    (r) => !r.errors?.length || code(r) === "INVALID_TRANSITION",
    failed,
  );
  if (plan.cancel) {
    await persist(
      `cancel ${plan.key}`,
      () => gql(url(0), CancelOrder, { input: { orderId: order.id, reason: "changed my mind" } }, customer),
      (r) => !r.errors?.length || code(r) === "INVALID_TRANSITION",
      failed,
    );
  } else if (plan.kind === "mixed") {
    // The carrier and the travel partner report once the modules have their rows (until then: refused, tried again).
    const [carrier, travel] = await Promise.all([tokens.logistics(), tokens.travelium()]);
    await Promise.all([
      persist(`shipment ${plan.key}`, () =>
        gql(
          url(1),
          ReportShipment,
          { input: { orderId: order.id, state: "DELIVERED" as never, idempotencyKey: `ship-${plan.key}` } },
          carrier,
        ),
      ),
      persist(`booking ${plan.key}`, () =>
        gql(
          url(0),
          ReportBooking,
          { input: { orderId: order.id, state: "TRAVELLED" as never, idempotencyKey: `book-${plan.key}` } },
          travel,
        ),
      ),
    ]);
  }
  driven.drivenAt = Date.now();
  return driven;
}

export interface DriveStats {
  /** Placements, payments and cancels that failed (then tried again): a mutation that did not succeed at once. */
  mutationFailures: number;
}

/** Drives the planned orders, `concurrency` at a time, spread over the gateways. */
export async function driveOrders(
  gateways: string[],
  plans: PlannedOrder[],
  {
    concurrency = 8,
    onDriven,
    stats,
  }: { concurrency?: number; onDriven?: (count: number) => void; stats?: DriveStats } = {},
): Promise<DrivenOrder[]> {
  const out: DrivenOrder[] = new Array(plans.length);
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < plans.length) {
        const i = next++;
        out[i] = await driveOrder(gateways, plans[i]!, i, stats);
        onDriven?.(++done);
      }
    }),
  );
  return out;
}

export interface Change {
  eventId: string;
  orderId: string;
  from: string | null;
  to: string;
}

/**
 * A client of orderStateChanged over WebSocket that resumes as README tells
 * app developers to: on any error or end, subscribe again `after` the last
 * eventId it saw. Keeps every change it was handed, in arrival order.
 */
export class Subscriber {
  readonly changes: Change[] = [];
  /** How often it had to resume. */
  resumes = 0;
  private last: string | undefined;
  private closed = false;
  private dispose: (() => void) | undefined;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly caller: { role: "customer" | "admin"; id: string },
  ) {}

  /** Subscribes; resolves once the gateway serves it. */
  async start(): Promise<void> {
    await this.subscribe();
  }

  private async subscribe(): Promise<void> {
    if (this.closed) return;
    const token = await tokenFor(this.caller);
    const client = createClient({
      url: `${this.url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
    });
    let ended = false;
    const again = () => {
      if (ended) return;
      ended = true;
      client.dispose();
      if (this.closed) return;
      this.resumes++;
      setTimeout(() => this.subscribe().catch(() => again()), 500);
    };
    this.dispose = () => {
      ended = true;
      client.dispose();
    };
    await new Promise<void>((resolve) => {
      client.on("connected", () => resolve());
      client.on("closed", () => {
        resolve();
        again();
      });
      client.subscribe(
        { query: print(OrderStateChanged), variables: { after: this.last } },
        {
          next: ({ data }) => {
            const change = (data as { orderStateChanged?: Change } | null | undefined)?.orderStateChanged;
            if (!change) return;
            this.last = change.eventId;
            this.changes.push({
              eventId: change.eventId,
              orderId: change.orderId,
              from: change.from,
              to: change.to,
            });
          },
          error: () => again(),
          complete: () => again(),
        },
      );
    });
  }

  close(): void {
    this.closed = true;
    this.dispose?.();
  }
}
