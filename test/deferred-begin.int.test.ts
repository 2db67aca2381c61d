import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Database, openDatabase, query, queryAtCommit } from "../src/db/database.ts";
import { createTestDatabase } from "./support/database.ts";

/**
 * A transaction's BEGIN goes out with its first statement, and a statement queued for the commit with
 * the COMMIT (src/db/deferred-begin.ts): round trips less, and nothing else may change. One pooled
 * connection, so every statement meets the same one.
 */
describe("BEGIN sent with the transaction's first statement, a last statement with its COMMIT", () => {
  let database: Database;
  let drop: () => Promise<void>;
  const sent = vi.spyOn(pg.Client.prototype, "query");

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    database = await openDatabase({ url: db.url, dataDir: ".data/test", poolSize: 1 });
    await database.db.execute(sql`create table notes (id int primary key, body text)`);
  });
  afterAll(async () => {
    await database.close();
    await drop();
  });

  /** True outside a transaction block: there each statement is a transaction of its own, with its own now(). */
  const autocommit = async () => {
    const now = async () => (await query<{ at: string }>(database.db, sql`select now()::text as at`))[0]!.at;
    const first = await now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    return (await now()) !== first;
  };

  const insert = (
    tx: Parameters<Parameters<Database["db"]["transaction"]>[0]>[0],
    id: number,
    body: string,
  ) => query(tx, sql`insert into notes (id, body) values (${id}, ${body})`);

  it("sends a prepared first statement with BEGIN in one query, and the rest as before", async () => {
    // The first run prepares the statements on the connection; from the second on they merge.
    await database.db.transaction(async (tx) => {
      await insert(tx, 1, "prepares");
      await query(tx, sql`select count(*)::int as n from notes`);
    });
    sent.mockClear();
    await database.db.transaction(async (tx) => {
      await insert(tx, 2, "merged");
      await query(tx, sql`select count(*)::int as n from notes`);
    });
    const texts = sent.mock.calls.map(([config]) =>
      typeof config === "string" ? config : (config as { text: string }).text,
    );
    expect(texts).toHaveLength(3);
    expect(texts[0]).toMatch(/^begin; execute q\d+\('2', 'merged'\)$/);
    expect(texts[2]).toBe("commit");
  });

  it("keeps the first statement inside the transaction: a rollback takes it back", async () => {
    await expect(
      database.db.transaction(async (tx) => {
        await insert(tx, 3, "rolled back");
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    const rows = await query<{ id: number }>(database.db, sql`select id from notes where id = 3`);
    expect(rows).toEqual([]);
    expect(await autocommit()).toBe(true);
  });

  it("passes every kind of value as a bound parameter would", async () => {
    const values = sql`select ${"it's \\ a 'quote' ünïcode"}::text as text, ${null}::text as none,
      ${JSON.stringify({ a: "b'c\\d" })}::jsonb as json, ${'{"x y","q\'r"}'}::text[] as list,
      ${new Date("2026-12-02T01:02:03.456Z")}::timestamptz as at, ${42}::int as n, ${true}::boolean as yes`;
    const outside = await query(database.db, values);
    const inside = await database.db.transaction(async (tx) => {
      await query(tx, values);
      return tx.transaction(async (tx2) => query(tx2, values));
    });
    expect(inside).toEqual(outside);
    expect(outside[0]).toMatchObject({ text: "it's \\ a 'quote' ünïcode", none: null, n: 42, yes: true });
  });

  it("leaves a failed first statement's transaction rolled back and the connection usable", async () => {
    await database.db.transaction(async (tx) => insert(tx, 4, "taken"));
    await expect(database.db.transaction(async (tx) => insert(tx, 4, "again"))).rejects.toThrow();
    expect(await autocommit()).toBe(true);
    const [row] = await query<{ body: string }>(database.db, sql`select body from notes where id = 4`);
    expect(row?.body).toBe("taken");
  });

  it("ends a transaction that sent nothing without leaving the connection in one", async () => {
    sent.mockClear();
    await database.db.transaction(async () => {});
    expect(sent).not.toHaveBeenCalled();
    expect(await autocommit()).toBe(true);
  });

  const sentTexts = () =>
    sent.mock.calls.map(([c]) => (typeof c === "string" ? c : (c as { text: string }).text));
  const bodies = async (from: number, to: number) =>
    (
      await query<{ body: string }>(
        database.db,
        sql`select body from notes where id between ${from} and ${to} order by id`,
      )
    ).map((r) => r.body);

  it("sends a queued last statement with the COMMIT, and commits it", async () => {
    // Prepared on the connection first: a statement it has not prepared goes at once.
    await database.db.transaction(async (tx) => {
      await insert(tx, 10, "first");
      await queryAtCommit(tx, sql`update notes set body = body || ${"+"} where id = ${10}`);
    });
    sent.mockClear();
    await database.db.transaction(async (tx) => {
      await insert(tx, 11, "merged");
      await queryAtCommit(tx, sql`update notes set body = body || ${"+"} where id = ${11}`);
    });
    const texts = sentTexts();
    expect(texts).toHaveLength(2);
    expect(texts[0]).toMatch(/^begin; execute q\d+\('11', 'merged'\)$/);
    expect(texts[1]).toMatch(/^execute q\d+\('\+', '11'\); commit$/);
    expect(await bodies(10, 11)).toEqual(["first+", "merged+"]);
    expect(await autocommit()).toBe(true);
  });

  it("sends a queued statement before the next one, in order, when the transaction goes on", async () => {
    await database.db.transaction(async (tx) => {
      await insert(tx, 12, "a");
      await queryAtCommit(tx, sql`update notes set body = body || ${"b"} where id = ${12}`);
      // This read sees the queued update: it went first.
      const [row] = await query<{ body: string }>(tx, sql`select body from notes where id = ${12}`);
      expect(row?.body).toBe("ab");
      await queryAtCommit(tx, sql`update notes set body = body || ${"c"} where id = ${12}`);
    });
    expect(await bodies(12, 12)).toEqual(["abc"]);
  });

  it("fails the commit when a queued statement fails, and keeps nothing of the transaction", async () => {
    await database.db.transaction(async (tx) => insert(tx, 13, "taken"));
    await expect(
      database.db.transaction(async (tx) => {
        await insert(tx, 14, "rolled back with it");
        await queryAtCommit(tx, sql`insert into notes (id, body) values (${13}, ${"twice"})`);
      }),
    ).rejects.toThrow();
    expect(await bodies(13, 14)).toEqual(["taken"]);
    expect(await autocommit()).toBe(true);
  });

  it("drops a queued statement when the transaction rolls back", async () => {
    await expect(
      database.db.transaction(async (tx) => {
        await insert(tx, 15, "rolled back");
        await queryAtCommit(tx, sql`update notes set body = ${"never"} where id = ${4}`);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await bodies(4, 15)).toEqual(["taken", "first+", "merged+", "abc", "taken"]);
    expect(await autocommit()).toBe(true);
  });

  it("sends a value with a NUL the ordinary way, and fails as PostgreSQL says", async () => {
    const error = await database.db.transaction(async (tx) => insert(tx, 5, "nul\u0000byte")).catch((e) => e);
    expect(String((error as Error).cause ?? error)).toMatch(/0x00/);
    expect(await autocommit()).toBe(true);
  });
});
