import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RoleProcess } from "../support/cluster.ts";
import { createTestDatabase, natsUrl, testPrefix } from "../support/database.ts";
import { deleteStream } from "../support/service.ts";
import { FaultEnv, runScenario } from "./scenario.ts";

/**
 * Processes that die at the worst moment, on the machine's PostgreSQL and NATS.
 * Each scenario drives 100 orders (digital and mixed, some cancelled) through
 * two gateways while the fault strikes, then the shared checker holds the
 * system to every promise.
 */
describe("faults of the processes", () => {
  const prefix = testPrefix();
  const env = new FaultEnv();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  /** Redeliveries of a killed worker's events come after the ack wait: 10 s rather than 30, for the suite's time. */
  const base = { NATS_ACK_WAIT_MS: "10000", LISTENER_RETRY_MS: "50" };

  beforeAll(async () => {
    db = await createTestDatabase();
    await env.start({ databaseUrl: db.url, natsUrl, prefix, env: base });
  });

  afterAll(async () => {
    await env.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  /** A process armed to kill itself at a fault point, then started again without it. */
  const killAt =
    (name: string, point: string) =>
    async (ctx: Parameters<Parameters<typeof runScenario>[1]["fault"]>[0]) => {
      const armed: RoleProcess = await env.cluster.replace(name, { FAULT_INJECT: point });
      const exit = await armed.exited;
      await ctx.strike();
      expect(exit.signal).toBe("SIGKILL");
      expect(armed.output).toContain(`fault injected: ${point.split("@")[0]}`);
      await env.cluster.restart(name);
    };

  for (const [i, point] of (
    ["relay:before-publish", "relay:after-publish", "relay:after-mark"] as const
  ).entries()) {
    it(`a relay killed (SIGKILL) at ${point}`, async () => {
      await runScenario(env, {
        order: 1 + i,
        name: `relay killed at ${point.split(":")[1]}`,
        // A few batches into the load: the relay publishes in fewer, larger batches as the pipeline gets
        // faster, and at its 15th it might not arrive before the scenario's orders are all out (it then
        // never died, and the test waited for ever).
        fault: killAt("relay", `${point}@5`),
      });
    });
  }

  it("a worker killed in the middle of a batch, and started again", async () => {
    await runScenario(env, {
      order: 4,
      name: "worker killed mid-batch",
      // Listeners take batches and skip what has nothing for them: a few transactions into the load is mid-flow.
      fault: killAt("workers", "listener:mid-batch@5"),
    });
  });

  it("the notifier killed in the middle of a send", async () => {
    await runScenario(env, {
      order: 5,
      name: "notifier killed mid-send",
      fault: killAt("notifier", "notifier:mid-send@15"),
    });
  });
});
