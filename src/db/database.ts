import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import type { SQL } from "drizzle-orm";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzleLite } from "drizzle-orm/pglite";
import { migrate as migrateLite } from "drizzle-orm/pglite/migrator";
import pg from "pg";
import * as schema from "./schema.ts";

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** Either the database or an open transaction: helpers that must join the caller's transaction take this. */
export type Executor = Db | Tx;

export interface Database {
  readonly kind: "postgres" | "pglite";
  readonly db: Db;
  /** Calls back on every NOTIFY on the channel; resolves to an unlisten function. */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  /** Rejects when the database does not answer (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * A connection of its own, for state that must end with this process:
   * session-level advisory locks held as claims, which PostgreSQL releases
   * when the connection dies. PGlite has one connection, so its session is
   * that one, shared by every caller in the process.
   */
  session(): Promise<Session>;
}

export interface Session {
  readonly db: Db;
  /** False once the connection is lost, and with it every lock it held. */
  readonly alive: boolean;
  close(): Promise<void>;
}

const migrationsFolder = join(import.meta.dirname, "..", "..", "drizzle");
/** Any constant: every instance that starts at once queues on it, so migrations apply once. */
const migrationLock = 7_301_990_001;

export async function openDatabase(options: { url?: string; dataDir: string }): Promise<Database> {
  return options.url ? openPostgres(options.url) : openPglite(options.dataDir);
}

async function openPostgres(url: string): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  const client = await pool.connect();
  try {
    await client.query("select pg_advisory_lock($1)", [migrationLock]);
    await migratePg(drizzlePg(client, { schema }), { migrationsFolder });
  } finally {
    await client.query("select pg_advisory_unlock($1)", [migrationLock]).catch(() => {});
    client.release();
  }
  const listeners: pg.Client[] = [];
  return {
    kind: "postgres",
    db: drizzlePg(pool, { schema }) as unknown as Db,
    async listen(channel, onNotify) {
      const listener = new pg.Client({ connectionString: url });
      listener.on("error", () => {});
      await listener.connect();
      listener.on("notification", (n) => {
        if (n.channel === channel) onNotify();
      });
      await listener.query(`listen "${channel}"`);
      listeners.push(listener);
      return async () => {
        listeners.splice(listeners.indexOf(listener), 1);
        await listener.end().catch(() => {});
      };
    },
    async ping() {
      await pool.query("select 1");
    },
    async close() {
      await Promise.all(listeners.map((l) => l.end().catch(() => {})));
      await pool.end();
    },
    async session() {
      const client = new pg.Client({ connectionString: url });
      let alive = true;
      const lost = () => {
        alive = false;
      };
      client.on("error", lost);
      client.on("end", lost);
      await client.connect();
      return {
        db: drizzlePg(client, { schema }) as unknown as Db,
        get alive() {
          return alive;
        },
        async close() {
          alive = false;
          await client.end().catch(() => {});
        },
      };
    },
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  const dir = join(dataDir, "pglite");
  mkdirSync(dir, { recursive: true });
  const client = await PGlite.create(dir);
  const db = drizzleLite(client, { schema });
  await migrateLite(db, { migrationsFolder });
  return {
    kind: "pglite",
    db: db as unknown as Db,
    async listen(channel, onNotify) {
      return client.listen(channel, onNotify);
    },
    async ping() {
      await client.query("select 1");
    },
    async close() {
      await client.close();
    },
    async session() {
      return { db: db as unknown as Db, alive: true, async close() {} };
    },
  };
}

/** Raw SQL for what the query builder has no words for (advisory locks, nextval); both drivers answer `rows`. */
export async function query<T>(db: Executor, statement: SQL): Promise<T[]> {
  const result = (await db.execute(statement)) as unknown as { rows: T[] };
  return result.rows;
}
