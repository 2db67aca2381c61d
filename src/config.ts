import { type GatewayOptions, readGatewayOptions } from "./gateway/options.ts";
import { relaySlots } from "./relay/relay.ts";

/** Every setting the service reads, from the environment, with the defaults of CONTRACT.md. */

/** The roles that are not modules; every module in src/modules is a role of its own name too. */
export const coreRoles = ["gateway", "relay", "orders", "notifier"] as const;

export interface Config {
  port: number;
  /** Unset: embedded PGlite in dataDir. */
  databaseUrl: string | undefined;
  /** Connections of each process's PostgreSQL pool. Default 10. */
  databasePoolSize: number;
  dataDir: string;
  /** Unset: the in-process bus (valid only when one process runs every role). Several: a cluster's servers. */
  natsUrl: string[] | undefined;
  natsPrefix: string;
  /** How long JetStream drops a repeated publish of one event id. */
  natsDuplicateWindowMs: number;
  /** Replicas of the stream on a JetStream cluster (its consumers take the same). Default 1. */
  natsReplicas: number;
  /** How long the stream keeps an event, hence how far back a resume or a late listener reaches. Default 7 days. */
  natsMaxAgeMs: number;
  /** Most bytes the stream keeps (the oldest go first); undefined: no limit but the age. */
  natsMaxBytes: number | undefined;
  /** How long inbox rows and module notes are kept: the deduplication horizon, at least the stream's max age. */
  inboxRetentionMs: number;
  /** How often the orders role sweeps what is past the horizon; 0: never. Default 1 h. */
  retentionSweepMs: number;
  /** Unset: a random secret for this run. */
  jwtSecret: string | undefined;
  smtpUrl: string | undefined;
  mailFrom: string;
  /** Worker threads that render the notifier's mails (invoice PDF, raw message); 0: on the event loop. Default 1. */
  mailRenderThreads: number;
  /** The notifier's wait after a failed send, doubled for each further failure (at most 10 min). */
  notifierRetryMs: number;
  modulesRequiredForCompletion: string[];
  /** How often the orders role looks for orders that should have moved and did not. Default 30 s. */
  completionSweepMs: number;
  /** An open order whose shared state has not moved for this long is stuck (console, /metrics). Default 5 min. */
  stuckOrderAfterMs: number;
  /** Most events a listener handles in one transaction. Default 64. */
  listenerBatch: number;
  /** Relay partitions, each publishing its share of the orders in a transaction of its own. Default 1. */
  relayPartitions: number;
  /** How long JetStream waits for a listener's ack before it delivers the event again. Default 30 s. */
  natsAckWaitMs: number;
  /** A listener's wait after a handler's first failure, times 4 after each further one (at most 60 s). Default 250 ms. */
  listenerRetryMs: number;
  /** How long a process takes to stop on SIGTERM before it hands back what it still holds and exits. Default 10 s. */
  shutdownTimeoutMs: number;
  /** "all", or the roles this process runs (checked against the module list at start). */
  roles: "all" | Set<string>;
  logLevel: string;
  production: boolean;
  gateway: GatewayOptions;
}

type Env = Record<string, string | undefined>;

function list(value: string | undefined, fallback: string): string[] {
  return (value ?? fallback)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function readConfig(env: Env = process.env): Config {
  const roleNames = list(env.ROLES, "all");
  const roles = roleNames.includes("all") ? "all" : new Set(roleNames);
  const natsPrefix = env.NATS_PREFIX ?? "orders";
  if (!/^[A-Za-z0-9_-]+$/.test(natsPrefix)) {
    throw new Error(`NATS_PREFIX: "${natsPrefix}" must be letters, digits, "_" or "-"`);
  }
  if (!env.NATS_URL && roles !== "all") {
    throw new Error(
      "ROLES: splitting the roles across processes needs NATS_URL (the in-process bus is one process)",
    );
  }
  const port = Number(env.PORT ?? 4000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT: "${env.PORT}" is not a port`);
  const notifierRetryMs = Number(env.NOTIFIER_RETRY_MS ?? 1000);
  if (!Number.isInteger(notifierRetryMs) || notifierRetryMs < 1)
    throw new Error(`NOTIFIER_RETRY_MS: "${env.NOTIFIER_RETRY_MS}" is not a positive number of milliseconds`);
  const databasePoolSize = Number(env.DATABASE_POOL_SIZE ?? 10);
  if (!Number.isInteger(databasePoolSize) || databasePoolSize < 1)
    throw new Error(`DATABASE_POOL_SIZE: "${env.DATABASE_POOL_SIZE}" is not a positive whole number`);
  const natsDuplicateWindowMs = Number(env.NATS_DUPLICATE_WINDOW_MS ?? 120_000);
  if (!Number.isInteger(natsDuplicateWindowMs) || natsDuplicateWindowMs < 100)
    throw new Error(
      `NATS_DUPLICATE_WINDOW_MS: "${env.NATS_DUPLICATE_WINDOW_MS}" is not a number of milliseconds (100 or more)`,
    );
  // A cluster's servers, comma-separated: the client connects to any and fails over to the others.
  const natsServers = list(env.NATS_URL, "");
  const natsReplicas = Number(env.NATS_REPLICAS ?? 1);
  if (!Number.isInteger(natsReplicas) || natsReplicas < 1 || natsReplicas > 5)
    throw new Error(`NATS_REPLICAS: "${env.NATS_REPLICAS}" is not a whole number from 1 to 5`);
  const hour = 3_600_000;
  const natsMaxAgeHours = Number(env.NATS_MAX_AGE_HOURS ?? 168);
  if (!(natsMaxAgeHours > 0))
    throw new Error(`NATS_MAX_AGE_HOURS: "${env.NATS_MAX_AGE_HOURS}" is not a positive number of hours`);
  const natsMaxBytes = env.NATS_MAX_BYTES ? Number(env.NATS_MAX_BYTES) : undefined;
  if (natsMaxBytes !== undefined && !(Number.isInteger(natsMaxBytes) && natsMaxBytes > 0))
    throw new Error(`NATS_MAX_BYTES: "${env.NATS_MAX_BYTES}" is not a positive whole number of bytes`);
  const inboxRetentionHours = Number(env.INBOX_RETENTION_HOURS ?? 336);
  if (!(inboxRetentionHours > 0))
    throw new Error(
      `INBOX_RETENTION_HOURS: "${env.INBOX_RETENTION_HOURS}" is not a positive number of hours`,
    );
  // An event can come again (a redelivery, a replay) as long as the stream holds it: its inbox row must still be there.
  if (inboxRetentionHours < natsMaxAgeHours)
    throw new Error(
      `INBOX_RETENTION_HOURS (${inboxRetentionHours}) must be at least NATS_MAX_AGE_HOURS (${natsMaxAgeHours}): an event the stream still holds can be delivered again, and only its inbox row makes that harmless`,
    );
  const retentionSweepMs = Number(env.RETENTION_SWEEP_MS ?? hour);
  if (!Number.isInteger(retentionSweepMs) || retentionSweepMs < 0)
    throw new Error(
      `RETENTION_SWEEP_MS: "${env.RETENTION_SWEEP_MS}" is not a number of milliseconds (0 turns the sweep off)`,
    );
  const completionSweepMs = Number(env.COMPLETION_SWEEP_MS ?? 30_000);
  if (!Number.isInteger(completionSweepMs) || completionSweepMs < 1)
    throw new Error(
      `COMPLETION_SWEEP_MS: "${env.COMPLETION_SWEEP_MS}" is not a positive number of milliseconds`,
    );
  const stuckOrderAfterMs = Number(env.STUCK_ORDER_AFTER_MS ?? 300_000);
  if (!Number.isInteger(stuckOrderAfterMs) || stuckOrderAfterMs < 1000)
    throw new Error(
      `STUCK_ORDER_AFTER_MS: "${env.STUCK_ORDER_AFTER_MS}" is not a number of milliseconds (1000 or more)`,
    );
  const listenerBatch = Number(env.LISTENER_BATCH ?? 64);
  if (!Number.isInteger(listenerBatch) || listenerBatch < 1)
    throw new Error(`LISTENER_BATCH: "${env.LISTENER_BATCH}" is not a positive whole number`);
  const relayPartitions = Number(env.RELAY_PARTITIONS ?? 1);
  if (!Number.isInteger(relayPartitions) || relayPartitions < 1 || relayPartitions > relaySlots)
    throw new Error(
      `RELAY_PARTITIONS: "${env.RELAY_PARTITIONS}" is not a whole number from 1 to ${relaySlots}`,
    );
  const natsAckWaitMs = Number(env.NATS_ACK_WAIT_MS ?? 30_000);
  if (!Number.isInteger(natsAckWaitMs) || natsAckWaitMs < 100)
    throw new Error(
      `NATS_ACK_WAIT_MS: "${env.NATS_ACK_WAIT_MS}" is not a number of milliseconds (100 or more)`,
    );
  const listenerRetryMs = Number(env.LISTENER_RETRY_MS ?? 250);
  if (!Number.isInteger(listenerRetryMs) || listenerRetryMs < 1)
    throw new Error(`LISTENER_RETRY_MS: "${env.LISTENER_RETRY_MS}" is not a positive number of milliseconds`);
  const mailRenderThreads = Number(env.MAIL_RENDER_THREADS ?? 1);
  if (!Number.isInteger(mailRenderThreads) || mailRenderThreads < 0)
    throw new Error(`MAIL_RENDER_THREADS: "${env.MAIL_RENDER_THREADS}" is not a whole number (0 or more)`);
  const shutdownTimeoutMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? 10_000);
  if (!Number.isInteger(shutdownTimeoutMs) || shutdownTimeoutMs < 0)
    throw new Error(`SHUTDOWN_TIMEOUT_MS: "${env.SHUTDOWN_TIMEOUT_MS}" is not a number of milliseconds`);
  return {
    port,
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolSize,
    dataDir: env.DATA_DIR ?? ".data",
    natsUrl: natsServers.length > 0 ? natsServers : undefined,
    natsPrefix,
    natsDuplicateWindowMs,
    natsReplicas,
    natsMaxAgeMs: natsMaxAgeHours * hour,
    natsMaxBytes,
    inboxRetentionMs: inboxRetentionHours * hour,
    retentionSweepMs,
    jwtSecret: env.JWT_SECRET || undefined,
    smtpUrl: env.SMTP_URL || undefined,
    mailFrom: env.MAIL_FROM ?? "orders@localhost",
    mailRenderThreads,
    notifierRetryMs,
    modulesRequiredForCompletion: list(
      env.MODULES_REQUIRED_FOR_COMPLETION,
      "finance,logistics,travelium,subscription",
    ),
    completionSweepMs,
    stuckOrderAfterMs,
    listenerBatch,
    relayPartitions,
    natsAckWaitMs,
    listenerRetryMs,
    shutdownTimeoutMs,
    roles,
    logLevel: env.LOG_LEVEL ?? "info",
    production: env.NODE_ENV === "production",
    gateway: readGatewayOptions(env),
  };
}
