import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** What operators graph: outbox throughput, listener outcomes, order latency. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const published = new Counter({
    name: "orders_outbox_published_total",
    help: "Outbox events the relay published to the bus",
    registers: [registry],
  });
  const handled = new Counter({
    name: "orders_listener_deliveries_total",
    help: "Deliveries a listener handled, by outcome (applied, duplicate, failed, dead)",
    labelNames: ["listener", "outcome"] as const,
    registers: [registry],
  });
  const publishLag = new Histogram({
    name: "orders_outbox_publish_lag_seconds",
    help: "Time from an event's commit to its publication",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  let liveSubscriptions = () => 0;
  new Gauge({
    name: "orders_live_subscriptions",
    help: "orderStateChanged subscriptions this gateway is serving (WebSocket and SSE)",
    registers: [registry],
    collect() {
      this.set(liveSubscriptions());
    },
  });
  const countParkedEvents = databaseCount(
    registry,
    "orders_outbox_parked_events",
    "Outbox events the bus refused for good, held with the later events of their order until an admin republishes them",
  );
  const countWaitingDeadLetters = databaseCount(
    registry,
    "orders_dead_letters_waiting",
    "Dead letters no listener is done with yet (not settled: waiting, or replayed and not handled yet); the same count in every process",
  );
  const countOrdersByState = databaseReading(
    registry,
    "orders_by_state",
    "Orders in each shared state now",
    "state",
  );
  const countOutboxWaiting = databaseCount(
    registry,
    "orders_outbox_waiting",
    "Outbox events committed and not published yet (parked ones apart)",
  );
  const readOutboxLag = databaseCount(
    registry,
    "orders_outbox_lag_seconds",
    "The outbox lag: age of the oldest event not published yet (parked ones apart), 0 when none waits",
  );
  const readConsumerBacklog = databaseReading(
    registry,
    "orders_consumer_waiting",
    "Events on the bus not handed to each listener's durable consumer yet: its lag",
    "consumer",
  );
  const countStuckOrders = databaseCount(
    registry,
    "orders_stuck",
    "Open orders whose shared state has not moved for longer than STUCK_ORDER_AFTER_MS",
  );
  const measureOldestTransaction = databaseCount(
    registry,
    "orders_database_oldest_transaction_seconds",
    "How long the oldest transaction open on the database has been open: one held for minutes keeps every row version since, and slows the outbox",
  );
  return {
    contentType: registry.contentType,
    measureOldestTransaction,
    /** Where the gauges of the operators' console read their figures (the console shows the same). */
    console: {
      countOrdersByState,
      countOutboxWaiting,
      readOutboxLag,
      readConsumerBacklog,
      countStuckOrders,
    },
    /** Where the dead-letter gauge reads its count; the database knows it. */
    countWaitingDeadLetters,
    /** Where the gauge above reads its value; the gateway's feed knows it. */
    countLiveSubscriptions(count: () => number) {
      liveSubscriptions = count;
    },
    /** Where the parked-events gauge reads its value: the outbox. */
    countParkedEvents,
    render: () => registry.metrics(),
    published,
    handled,
    publishLag,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * A gauge whose value is a count the database keeps, read at each scrape;
 * answers where to read it from (0 until told).
 */
function databaseCount(registry: Registry, name: string, help: string) {
  let count: () => Promise<number> = async () => 0;
  new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      try {
        this.set(await count());
      } catch {
        // The database does not answer: the last count stands, and /readyz says why.
      }
    },
  });
  return (from: () => Promise<number>) => {
    count = from;
  };
}

/**
 * A gauge of several values, one per label value, read together at each
 * scrape from where it is told (nothing until told).
 */
function databaseReading(registry: Registry, name: string, help: string, label: string) {
  let read: () => Promise<Record<string, number>> = async () => ({});
  new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    async collect() {
      try {
        const values = await read();
        this.reset();
        for (const [key, value] of Object.entries(values)) this.set({ [label]: key }, value);
      } catch {
        // As databaseCount: the last reading stands.
      }
    },
  });
  return (from: () => Promise<Record<string, number>>) => {
    read = from;
  };
}
