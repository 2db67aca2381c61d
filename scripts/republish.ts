/**
 * npm run republish -- --from <ISO instant> --to <ISO instant>
 *
 * Has the relay publish again the outbox events that occurred in [from, to),
 * after the broker lost them (see README, "Running on a NATS cluster"). The
 * same as the admin mutation republishEvents; needs DATABASE_URL (and
 * INBOX_RETENTION_HOURS if the service sets it). A relay must be running.
 */
import { parseArgs } from "node:util";
import { readConfig } from "../src/config.ts";
import { openDatabase } from "../src/db/database.ts";
import { refuseRange, republishRange } from "../src/relay/republish.ts";

const { values } = parseArgs({ options: { from: { type: "string" }, to: { type: "string" } } });
if (!values.from || !values.to) {
  process.stderr.write("usage: npm run republish -- --from 2026-01-01T10:00:00Z --to 2026-01-01T11:00:00Z\n");
  process.exit(2);
}
const range = { from: new Date(values.from), to: new Date(values.to) };
const config = readConfig();
const refused = refuseRange(range, config.inboxRetentionMs);
if (refused) {
  process.stderr.write(`refused: ${refused}\n`);
  process.exit(2);
}
const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
try {
  const events = await republishRange(database.db, range);
  process.stdout.write(
    `${events} events from ${range.from.toISOString()} to ${range.to.toISOString()} handed to the relay to publish again\n`,
  );
} finally {
  await database.close();
}
