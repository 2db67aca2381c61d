import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, testPrefix } from "../support/database.ts";
import { startRestartableNats } from "../support/private-nats.ts";
import { metrics } from "./metrics.ts";
import { FaultEnv, runScenario } from "./scenario.ts";

/** NATS gone for 30 s under load, on a server of the test's own: PostgreSQL holds everything meanwhile. */
describe("a NATS outage", () => {
  const prefix = testPrefix();
  const env = new FaultEnv();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let nats: Awaited<ReturnType<typeof startRestartableNats>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    nats = await startRestartableNats();
    await env.start({ databaseUrl: db.url, natsUrl: nats.url, prefix, env: { NATS_ACK_WAIT_MS: "10000" } });
  });

  afterAll(async () => {
    await env.stop();
    await nats?.close();
    await db?.drop();
  });

  it("NATS stopped for 30 s while orders are placed and paid: the mutations succeed, the backlog drains", async () => {
    const seen = { lag: 0, placedWhileDown: 0 };
    await runScenario(env, {
      order: 6,
      name: "NATS stopped 30 s",
      async fault(ctx) {
        await ctx.driven(3);
        await nats.stop();
        await ctx.strike();
        const before = await env.sql.query<{ n: number }>("select count(*)::int as n from sales_orders");
        const until = Date.now() + 30_000;
        while (Date.now() < until) {
          const m = await metrics(env.cluster.gateways[0]!).catch(() => ({}) as Record<string, number>);
          seen.lag = Math.max(seen.lag, m.orders_outbox_lag_seconds ?? 0);
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
        const after = await env.sql.query<{ n: number }>("select count(*)::int as n from sales_orders");
        seen.placedWhileDown = after.rows[0]!.n - before.rows[0]!.n;
        await nats.start();
        ctx.recovered();
      },
      note: () =>
        `${seen.placedWhileDown} orders placed while it was down; orders_outbox_lag_seconds peaked at ${seen.lag.toFixed(0)} s; time to recover counts from its restart`,
      after(_orders, stats) {
        // Placing, paying and cancelling never needed the bus.
        expect(stats.mutationFailures).toBe(0);
        expect(seen.placedWhileDown).toBeGreaterThan(50);
        expect(seen.lag).toBeGreaterThan(20);
      },
    });
  });
});
