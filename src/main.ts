import { randomBytes } from "node:crypto";
import { type Config, readConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { startService } from "./server.ts";
import { demoCallers, secretKey, signToken } from "./tokens.ts";

let config: Config;
try {
  config = readConfig();
} catch (error) {
  process.stderr.write(`configuration: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
const logger = createLogger(config.logLevel);
const jwtSecret = secretKey(config.jwtSecret ?? randomBytes(32).toString("hex"));

const service = await startService({ config, logger, jwtSecret }).catch((error: unknown) => {
  logger.fatal({ err: error instanceof Error ? error.stack : String(error) }, "cannot start");
  process.exit(1);
});

if (!service.gateway) logger.info(`probes and metrics on http://localhost:${service.port}/healthz`);
else {
  logger.info(`GraphQL on http://localhost:${service.port}/graphql`);
  logger.info(`the operators' console on http://localhost:${service.port}/console`);
  if (!config.jwtSecret && !config.gateway.jwksUrl) {
    // With a random secret, nobody could call the API: print a ready token for each role.
    const lines = await Promise.all(
      demoCallers.map(
        async (c) =>
          `  ${`${c.role} ${c.scopes.join(",")}`.padEnd(22)} Bearer ${await signToken(jwtSecret, c)}`,
      ),
    );
    const admin = demoCallers.find((c) => c.role === "admin");
    // The token rides in the fragment, which the browser keeps to itself: it never reaches a server log.
    const console = admin
      ? `The operators' console: http://localhost:${service.port}/console#token=${await signToken(jwtSecret, admin)}\n\n`
      : "";
    process.stdout.write(
      `\nJWT_SECRET is unset: tokens for this run (valid 30 days)\n${lines.join("\n")}\n\n${console}`,
    );
  }
}

/**
 * SIGTERM: stop taking work and finish what is in hand, within
 * SHUTDOWN_TIMEOUT_MS; past it, hand back to the bus what is still held and
 * exit anyway. Either way nothing is lost (what did not commit rolls back
 * and comes again) nor doubled (the inboxes drop what comes twice), so both
 * exit 0; only a hand-back the bus could not hear exits 1 (it redelivers
 * after the ack wait all the same).
 */
let signals = 0;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (++signals > 1) process.exit(1);
    const bound = config.shutdownTimeoutMs;
    logger.info({ signal, boundMs: bound }, "stopping");
    setTimeout(() => {
      logger.warn({ boundMs: bound }, "not stopped within the bound: handing back what is in hand");
      service.handBack().then(
        () => {
          logger.info("handed back, exiting");
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: String(error) }, "could not hand back; the bus redelivers after the ack wait");
          process.exit(1);
        },
      );
      // The hand-back waits for NATS a couple of seconds at most; this is the last word.
      setTimeout(() => process.exit(1), 5_000).unref();
    }, bound);
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: String(error) }, "stop failed");
        process.exit(1);
      },
    );
  });
}
