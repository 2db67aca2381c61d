/**
 * The composition root: reads the configuration and starts the roles this
 * process runs (all of them by default) over one database and one bus.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Config, coreRoles } from "./config.ts";
import { type Database, oldestTransactionSeconds, openDatabase } from "./db/database.ts";
import { OrderFeed } from "./feed/order-feed.ts";
import { createGateway } from "./gateway/http.ts";
import { createMetrics, type Metrics } from "./gateway/metrics.ts";
import { answerProbe } from "./gateway/probes.ts";
import { createVerifier } from "./gateway/tokens.ts";
import type { Logger } from "./log.ts";
import { modules as defaultModules } from "./modules/index.ts";
import { createNotifier } from "./modules/notifier/index.ts";
import type { Bus, Consumption } from "./relay/bus.ts";
import { countWaitingDeadLetters } from "./relay/dead-letters.ts";
import { InProcessBus } from "./relay/in-process-bus.ts";
import { JetStreamBus } from "./relay/jetstream-bus.ts";
import { defaultRetryPolicy, type Listener, type RetryPolicy, runListener } from "./relay/listener.ts";
import { outboxBacklog, outboxLagSeconds } from "./relay/outbox-backlog.ts";
import { republishUnhandled } from "./relay/recover.ts";
import { countParked, Relay } from "./relay/relay.ts";
import { CompletionSweep } from "./statemachine/completion-sweep.ts";
import { KnownProducts } from "./statemachine/known-products.ts";
import type { ModuleDefinition } from "./statemachine/module.ts";
import { moduleListener } from "./statemachine/module-listener.ts";
import { countOrdersByStatus, countUnmovedOrders } from "./statemachine/order-stats.ts";
import { ordersListener } from "./statemachine/orders-listener.ts";
import { RecentOrders } from "./statemachine/recent-orders.ts";
import { RetentionSweep } from "./statemachine/retention.ts";

export interface ServiceOptions {
  config: Config;
  logger: Logger;
  /** The HS256 secret; main.ts makes a random one when JWT_SECRET is unset. */
  jwtSecret: Uint8Array;
  /** Default: the module list of src/modules. Tests add their own. */
  modules?: readonly ModuleDefinition[];
  retry?: RetryPolicy;
  /** Extra listeners (tests, future roles), run like the modules'. */
  listeners?: Listener[];
}

export interface Service {
  database: Database;
  bus: Bus;
  /** The HTTP port: GraphQL and the probes with the gateway role, only the probes without it. */
  port: number | undefined;
  /** Whether this process serves /graphql (the gateway role). */
  gateway: boolean;
  stop(): Promise<void>;
  /**
   * When stop() has taken too long (SHUTDOWN_TIMEOUT_MS): hands the bus back
   * what this process still holds, so the caller can exit. What it had not
   * committed rolls back when the process exits (its connections close), the
   * relay's batch included; what it had committed is acknowledged or comes
   * again as a duplicate. Rejects when the bus could not be told.
   */
  handBack(): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const { config, logger } = options;
  const modules = options.modules ?? defaultModules;
  const known = new Set<string>([...coreRoles, ...modules.map((m) => m.name)]);
  for (const role of config.roles === "all" ? [] : config.roles) {
    if (!known.has(role))
      throw new Error(`ROLES: unknown role "${role}" (known: all, ${[...known].join(", ")})`);
  }
  const has = (role: string) => config.roles === "all" || config.roles.has(role);
  const metrics = createMetrics();

  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    logger,
    poolSize: config.databasePoolSize,
  });
  metrics.countWaitingDeadLetters(() => countWaitingDeadLetters(database.db));
  watchPipeline(metrics, database, config.stuckOrderAfterMs);
  metrics.measureOldestTransaction(() => oldestTransactionSeconds(database.db));
  const bus: Bus = config.natsUrl
    ? new JetStreamBus({
        url: config.natsUrl,
        prefix: config.natsPrefix,
        duplicateWindowMs: config.natsDuplicateWindowMs,
        limits: {
          replicas: config.natsReplicas,
          maxAgeMs: config.natsMaxAgeMs,
          maxBytes: config.natsMaxBytes,
        },
        ackWaitMs: config.natsAckWaitMs,
        logger,
      })
    : new InProcessBus();
  await bus.start();
  metrics.console.readConsumerBacklog(async () =>
    Object.fromEntries((await bus.backlog()).map((c) => [c.consumer, c.waiting])),
  );
  logger.info(
    { database: database.kind, bus: bus.kind, roles: config.roles === "all" ? "all" : [...config.roles] },
    "starting",
  );

  const stops: (() => Promise<void>)[] = [];
  const listenerDeps = {
    db: database.db,
    bus,
    logger,
    retry: options.retry ?? {
      ...defaultRetryPolicy,
      backoffMs: (attempt: number) => Math.min(60_000, config.listenerRetryMs * 4 ** (attempt - 1)),
    },
    batchSize: config.listenerBatch,
    onHandled: (listener: string, _event: unknown, outcome: string) =>
      metrics.handled.inc({ listener, outcome }),
  };
  const listeners: Listener[] = [...(options.listeners ?? [])];
  if (has("orders")) listeners.push(ordersListener(modules));
  for (const module of modules) if (has(module.name)) listeners.push(moduleListener(module));
  const notifier = has("notifier")
    ? createNotifier({
        database,
        logger,
        mailFrom: config.mailFrom,
        smtpUrl: config.smtpUrl,
        renderThreads: config.mailRenderThreads,
        dataDir: config.dataDir,
        retryMs: config.notifierRetryMs,
      })
    : undefined;
  if (notifier) listeners.push(notifier.listener);
  if (bus.kind === "in-process") {
    const marked = await republishUnhandled(
      database.db,
      listeners,
      new Date(Date.now() - config.inboxRetentionMs),
    );
    if (marked > 0)
      logger.info({ events: marked }, "handing events not yet handled before the restart to the new bus");
  }
  const consumptions: Consumption[] = [];
  for (const listener of listeners) consumptions.push(await runListener(listenerDeps, listener));
  stops.push(async () => {
    await Promise.all(consumptions.map((c) => c.stop()));
  });
  if (has("orders")) {
    const sweep = new CompletionSweep({
      db: database.db,
      modules,
      logger,
      intervalMs: config.completionSweepMs,
    });
    sweep.start();
    stops.push(() => sweep.stop());
    if (config.retentionSweepMs > 0) {
      const retention = new RetentionSweep({
        db: database.db,
        logger,
        inboxRetentionMs: config.inboxRetentionMs,
        intervalMs: config.retentionSweepMs,
      });
      retention.start();
      stops.push(() => retention.stop());
    }
  }
  if (notifier) {
    await notifier.sender.start();
    // After the listeners; finishes the email in flight, before the database closes.
    stops.push(() => notifier.sender.stop());
  }

  if (has("relay")) {
    metrics.countParkedEvents(() => countParked(database.db));
    const relay = new Relay(database, bus, logger, {
      duplicateWindowMs: config.natsDuplicateWindowMs,
      partitions: config.relayPartitions,
      onPublished: (events) => {
        metrics.published.inc(events.length);
        const now = Date.now();
        // A replay (republishEvents, an embedded bus restarted) occurred long ago: its age is no publishing lag.
        for (const e of events)
          if (!e.replay) metrics.publishLag.observe((now - Date.parse(e.occurredAt)) / 1000);
      },
    });
    await relay.start();
    // The relay stops first, so nothing is published to a bus that is closing.
    stops.unshift(() => relay.stop());
  }

  let port: number | undefined;
  if (has("gateway")) {
    const feed = new OrderFeed(bus, logger, {
      perCaller: config.gateway.maxSubscriptionsPerCaller,
      recentOrders: config.gateway.feedRecentOrders,
    });
    await feed.start();
    metrics.countLiveSubscriptions(() => feed.subscriberCount);
    const gateway = createGateway({
      database,
      bus,
      feed,
      logger,
      metrics,
      modules,
      stuckOrderAfterMs: config.stuckOrderAfterMs,
      options: config.gateway,
      verify: createVerifier({
        secret: options.jwtSecret,
        jwksUrl: config.gateway.jwksUrl,
        issuer: config.gateway.jwtIssuer,
        audience: config.gateway.jwtAudience,
      }),
      commands: {
        db: database.db,
        modules,
        requiredForCompletion: config.modulesRequiredForCompletion,
        knownProducts: new KnownProducts(),
        recentOrders: new RecentOrders(),
      },
      inboxRetentionMs: config.inboxRetentionMs,
    });
    await new Promise<void>((resolve) => gateway.server.listen(config.port, resolve));
    port = (gateway.server.address() as AddressInfo).port;
    // Clients first: stop taking requests before the feed and the bus go.
    stops.unshift(async () => {
      await gateway.close();
      await feed.stop();
    });
  } else {
    // A process without the gateway still answers the probes and serves its metrics.
    const probes = createServer((req, res) => {
      answerProbe(req, res, { database, bus, metrics }).then(
        (answered) => {
          if (!answered) res.writeHead(404).end();
        },
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => probes.listen(config.port, resolve));
    port = (probes.address() as AddressInfo).port;
    stops.unshift(async () => {
      probes.closeAllConnections();
      await new Promise<void>((resolve) => probes.close(() => resolve()));
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    database,
    bus,
    port,
    gateway: has("gateway"),
    stop() {
      stopping ??= (async () => {
        for (const stop of stops) await stop();
        await bus.close();
        await database.close();
        logger.info("stopped");
      })();
      return stopping;
    },
    handBack: () => bus.handBack(),
  };
}

/** The operators' console's figures on /metrics, read from the database at each scrape. */
function watchPipeline(metrics: Metrics, database: Database, stuckOrderAfterMs: number): void {
  const { db } = database;
  metrics.console.countOrdersByState(() => countOrdersByStatus(db));
  metrics.console.countOutboxWaiting(async () => (await outboxBacklog(db)).waiting);
  metrics.console.readOutboxLag(async () => outboxLagSeconds(await outboxBacklog(db)));
  metrics.console.countStuckOrders(() => countUnmovedOrders(db, new Date(Date.now() - stuckOrderAfterMs)));
}
