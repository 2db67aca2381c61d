import { randomUUID } from "node:crypto";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { Db } from "../src/db/database.ts";
import * as schema from "../src/db/schema.ts";
import { createLogger } from "../src/log.ts";
import type { InProcessBus } from "../src/relay/in-process-bus.ts";
import { databaseAwayRetryMs, defaultRetryPolicy, deliver } from "../src/relay/listener.ts";

/**
 * A listener whose database does not answer (a PostgreSQL restart): the
 * failure cannot be counted, so the delivery count stands in for it; the
 * wait it asks for stays at a few seconds however many deliveries there were,
 * so events move again within seconds of the database coming back.
 */
describe("a listener while the database is away", () => {
  // A real pg pool to a port where nothing listens: every connection is refused, as during a restart.
  const pool = new pg.Pool({
    connectionString: "postgres://postgres@127.0.0.1:1/none",
    connectionTimeoutMillis: 1_000,
  });
  const db = drizzle(pool, { schema }) as unknown as Db;

  afterAll(() => pool.end());

  it("asks to be tried again within a few seconds, even after many deliveries", async () => {
    const listener = { name: "finance", types: ["InvoiceIssued"], handle: async () => {} };
    const event = {
      id: randomUUID(),
      type: "InvoiceIssued",
      orderId: randomUUID(),
      occurredAt: new Date().toISOString(),
      payload: {},
    };
    const deps = { db, bus: undefined as unknown as InProcessBus, logger: createLogger("silent") };
    for (const attempt of [1, 3, 5, 9]) {
      const outcome = await deliver(deps, listener, { event, attempt, sequence: 1 });
      expect(outcome.kind).toBe("retry");
      const delayMs = outcome.kind === "retry" ? outcome.delayMs : 0;
      expect(delayMs).toBeLessThanOrEqual(databaseAwayRetryMs);
      expect(delayMs).toBe(Math.min(databaseAwayRetryMs, defaultRetryPolicy.backoffMs(Math.min(attempt, 6))));
    }
  });
});
