import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsUrl, testPrefix } from "../support/database.ts";
import { startPrivatePostgres } from "../support/private-postgres.ts";
import { deleteStream } from "../support/service.ts";
import { eventually } from "../support/wait.ts";
import { FaultEnv, runScenario } from "./scenario.ts";

/** PostgreSQL restarted, and its backends terminated, under load: every process reconnects, LISTEN included. */
describe("PostgreSQL going away", () => {
  const prefix = testPrefix();
  const env = new FaultEnv();
  let postgres: Awaited<ReturnType<typeof startPrivatePostgres>>;
  const names = ["gateway1", "gateway2", "relay", "workers", "notifier"];

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    await env.start({ databaseUrl: postgres.url, natsUrl, prefix, env: { NATS_ACK_WAIT_MS: "10000" } });
  });

  afterAll(async () => {
    await env.stop();
    await deleteStream(prefix);
    await postgres?.stop();
  });

  /** The sessions of the processes that sit in LISTEN: the relay's and the notifier's. */
  const listening = async () => {
    const { rows } = await env.sql.query<{ name: string }>(
      `select application_name as name from pg_stat_activity
        where application_name = any($1::text[]) and query ilike 'listen %' and state = 'idle'`,
      [names],
    );
    return new Set(rows.map((r) => r.name));
  };
  const listenAgain = () =>
    eventually(
      async () => {
        const names = await listening();
        return names.has("relay") && names.has("notifier") && names;
      },
      { what: "the relay and the notifier to LISTEN again", timeoutMs: 30_000 },
    );

  it("PostgreSQL restarted under load (down 3 s)", async () => {
    await listenAgain();
    await runScenario(env, {
      order: 11,
      name: "PostgreSQL restarted (down 3 s)",
      async fault(ctx) {
        await ctx.driven(10);
        await ctx.strike();
        await postgres.restart(3_000);
        ctx.recovered();
        await listenAgain();
      },
      note: "every process reconnected, LISTEN included; time to recover counts from its start",
    });
  });

  it("every backend of every process terminated (pg_terminate_backend), twice, under load", async () => {
    let terminated = 0;
    await runScenario(env, {
      order: 12,
      name: "backends terminated",
      async fault(ctx) {
        await ctx.driven(10);
        await ctx.strike();
        for (let i = 0; i < 2; i++) {
          const { rows } = await env.sql.query<{ n: number }>(
            `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = any($1::text[])`,
            [names],
          );
          terminated += rows[0]!.n;
          await new Promise((resolve) => setTimeout(resolve, 2_000));
        }
        await listenAgain();
      },
      note: () => `${terminated} backends terminated; the relay and the notifier LISTEN again`,
      after() {
        expect(terminated).toBeGreaterThan(5);
      },
    });
  });
});
