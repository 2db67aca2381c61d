import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { type SQL, sql } from "drizzle-orm";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzleLite } from "drizzle-orm/pglite";
import { migrate as migrateLite } from "drizzle-orm/pglite/migrator";
import pg from "pg";
import { DeferredBeginClient, sendAtCommit } from "./deferred-begin.ts";
import * as schema from "./schema.ts";

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** Either the database or an open transaction: helpers that must join the caller's transaction take this. */
export type Executor = Db | Tx;

export interface Database {
  readonly kind: "postgres" | "pglite";
  readonly db: Db;
  /**
   * Calls back on every NOTIFY on the channel, with its payload; resolves to
   * an unlisten function. A lost connection (a PostgreSQL restart) is opened
   * again with back-off, and the callback is called once it is back, without
   * a payload: NOTIFYs sent meanwhile were missed.
   */
  listen(channel: string, onNotify: (payload?: string) => void): Promise<() => Promise<void>>;
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

export interface DatabaseLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const quiet: DatabaseLogger = { info() {}, warn() {} };

/**
 * TCP keepalive on every connection, so that a peer that vanished (a host
 * cut off, not a process that closed its socket) is noticed in a minute or
 * so rather than when the kernel gives up, hours later.
 */
const connectionOptions = {
  keepAlive: true,
  keepAliveInitialDelayMillis: 10_000,
  connectionTimeoutMillis: 10_000,
};

/** Back-off of a LISTEN connection being opened again: 100 ms, doubled up to 5 s. */
const relistenMs = (attempt: number) => Math.min(100 * 2 ** attempt, 5_000);

/**
 * Gives the pool back a checked-out client whose connection ended and that
 * nobody released within a second: drizzle-orm's transaction takes a client
 * and sends BEGIN outside its try/finally, so a BEGIN on a connection that
 * PostgreSQL just closed (a restart, a terminated backend) keeps the client
 * checked out for ever, one pool slot less each time, and pool.end() waits on
 * it. Released with its error, the pool drops it.
 */
function releaseLostClients(pool: pg.Pool): void {
  const checkedOut = new Set<pg.PoolClient>();
  pool.on("acquire", (client) => checkedOut.add(client));
  pool.on("release", (_err, client) => checkedOut.delete(client as pg.PoolClient));
  pool.on("connect", (client) =>
    client.on("end", () =>
      setTimeout(() => {
        const lost = client as pg.PoolClient;
        if (checkedOut.has(lost)) lost.release(new Error("connection ended while checked out"));
      }, 1_000).unref(),
    ),
  );
}

export async function openDatabase(options: {
  url?: string;
  dataDir: string;
  logger?: DatabaseLogger;
  /** Connections of the PostgreSQL pool (PGlite has one). Default 10. */
  poolSize?: number;
}): Promise<Database> {
  return options.url
    ? openPostgres(options.url, options.logger ?? quiet, options.poolSize ?? 10)
    : openPglite(options.dataDir);
}

async function openPostgres(url: string, logger: DatabaseLogger, poolSize: number): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    ...connectionOptions,
    // A transaction's BEGIN goes out with its first statement (deferred-begin.ts).
    Client: DeferredBeginClient,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  // Nor one that is checked out (its transaction killed by a timeout, a restart): its query rejects,
  // and the pool drops it when it comes back.
  pool.on("connect", (client) => client.on("error", () => {}));
  releaseLostClients(pool);
  const client = await pool.connect();
  try {
    await client.query("select pg_advisory_lock($1)", [migrationLock]);
    await migratePg(drizzlePg(client, { schema }), { migrationsFolder });
  } finally {
    await client.query("select pg_advisory_unlock($1)", [migrationLock]).catch(() => {});
    client.release();
  }
  const listeners = new Set<() => Promise<void>>();
  return {
    kind: "postgres",
    db: drizzlePg(pool, { schema }) as unknown as Db,
    async listen(channel, onNotify) {
      const unlisten = await listenAgainAndAgain(url, channel, onNotify, logger);
      listeners.add(unlisten);
      return async () => {
        listeners.delete(unlisten);
        await unlisten();
      };
    },
    async ping() {
      await pool.query("select 1");
    },
    async close() {
      await Promise.all([...listeners].map((unlisten) => unlisten()));
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

/**
 * A LISTEN connection that comes back: when it ends (PostgreSQL restarted,
 * the backend was terminated), it is opened again with back-off and the
 * caller woken once, for the NOTIFYs it missed. The first connection's
 * failure rejects, so a wrong URL still fails the start.
 */
async function listenAgainAndAgain(
  url: string,
  channel: string,
  onNotify: (payload?: string) => void,
  logger: DatabaseLogger,
): Promise<() => Promise<void>> {
  let current: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const open = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: url, ...connectionOptions });
    client.on("error", () => {});
    client.on("notification", (n) => {
      if (n.channel === channel) onNotify(n.payload);
    });
    client.on("end", () => {
      if (current !== client || closed) return;
      current = undefined;
      logger.warn({ channel }, "database: LISTEN connection lost, opening it again");
      reopen(0);
    });
    try {
      await client.connect();
      await client.query(`listen "${channel}"`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (closed) await client.end().catch(() => {});
    else current = client;
  };

  const reopen = (attempt: number): void => {
    retry = setTimeout(async () => {
      if (closed) return;
      try {
        await open();
      } catch (err) {
        logger.warn({ channel, err: String(err), attempt }, "database: LISTEN connection not back yet");
        reopen(attempt + 1);
        return;
      }
      logger.info({ channel }, "database: LISTEN connection back");
      if (!closed) onNotify();
    }, relistenMs(attempt));
  };

  await open();
  return async () => {
    closed = true;
    clearTimeout(retry);
    await current?.end().catch(() => {});
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
  const { session, built, name } = named(db, statement);
  const result = (await session.prepareQuery(built, undefined, name, false).execute()) as { rows: T[] };
  return result.rows;
}

/**
 * A transaction's last statement, whose answer nobody reads (an outbox
 * insert, the relay's marks): sent with the COMMIT when the connection can
 * (deferred-begin.ts), else at once. Its error, if any, then rejects the
 * transaction at its commit rather than here, and the transaction rolls back.
 */
export async function queryAtCommit(tx: Executor, statement: SQL): Promise<void> {
  const { session, built, name } = named(tx, statement);
  if (name && sendAtCommit(session.client, { name, text: built.sql, values: built.params })) return;
  await session.prepareQuery(built, undefined, name, false).execute();
}

/** The statement as drizzle's own execute() builds it, with its name: what db.execute(statement) does, prepared. */
function named(db: Executor, statement: SQL) {
  const { session, dialect } = db as unknown as DrizzleInternals;
  const built = dialect.sqlToQuery(statement);
  return { session, built, name: statementName(built.sql) };
}

/** What query() reaches in drizzle's database and transaction objects (public fields, not documented). */
interface DrizzleInternals {
  session: {
    client?: unknown;
    prepareQuery(
      query: { sql: string; params: unknown[] },
      fields: undefined,
      name: string | undefined,
      arrayMode: boolean,
    ): { execute(): Promise<unknown> };
  };
  dialect: { sqlToQuery(statement: SQL): { sql: string; params: unknown[] } };
}

/**
 * The hot paths' statements are few fixed texts, sent thousands of times:
 * named, each connection parses one once and PostgreSQL may keep its plan
 * (a claim's plan alone took some 3 ms), and the client sends only Bind and
 * Execute. Names are given to the first `namedStatements` texts met; a text
 * after them (a one-off, or a list whose length varies) goes unnamed, so no
 * connection keeps an unbounded set of statements.
 */
const namedStatements = 400;
const statementNames = new Map<string, string>();

function statementName(text: string): string | undefined {
  const known = statementNames.get(text);
  if (known !== undefined || statementNames.size >= namedStatements) return known;
  const name = `q${statementNames.size}`;
  statementNames.set(text, name);
  return name;
}

/**
 * How long the oldest transaction open on this database has been open (0
 * when none but ours): one held open for minutes (a report, a stuck session)
 * keeps every row version since it began, so vacuum cannot clean and the
 * outbox's queries slow down. A gauge, so it shows before the lag does.
 */
export async function oldestTransactionSeconds(db: Db): Promise<number> {
  const [row] = await query<{ seconds: number | null }>(
    db,
    sql`select extract(epoch from now() - min(xact_start))::float8 as seconds
          from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null`,
  );
  return Math.max(0, row?.seconds ?? 0);
}
