import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../src/config.ts";
import { query } from "../src/db/database.ts";
import { createTestDatabase } from "./support/database.ts";
import { startTestService, type TestService } from "./support/service.ts";

describe("DATABASE_POOL_SIZE", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await app?.stop();
    await database?.drop();
  });

  it("refuses what is not a positive whole number", () => {
    expect(() => readConfig({ DATABASE_POOL_SIZE: "0" })).toThrow(/DATABASE_POOL_SIZE/);
    expect(() => readConfig({ DATABASE_POOL_SIZE: "many" })).toThrow(/DATABASE_POOL_SIZE/);
    expect(readConfig({}).databasePoolSize).toBe(10);
  });

  it("bounds the connections the service's pool opens", async () => {
    // The gateway alone: no listener or relay holds a connection of its own meanwhile.
    app = await startTestService({
      databaseUrl: database.url,
      roles: "gateway",
      natsPrefix: `t_pool_${Date.now()}`,
      env: { DATABASE_POOL_SIZE: "2" },
    });
    const db = app.service.database.db;
    const backends = await Promise.all(
      Array.from({ length: 6 }, () =>
        query<{ pid: number }>(db, sql`select pg_backend_pid() as pid, pg_sleep(0.2)`).then(([r]) => r!.pid),
      ),
    );
    // Six queries at once share the pool's two connections (10 by default would open six).
    expect(new Set(backends).size).toBe(2);
  });
});
