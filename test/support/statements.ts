import pg from "pg";

/**
 * The SQL statements `run` sends, by text, counted where they leave for
 * PostgreSQL: every statement, pooled or in a transaction, goes through a pg
 * Client's query. Whatever else talks to the database meanwhile counts too.
 * A bare BEGIN is left out: a transaction's BEGIN is held back until its
 * first statement (src/db/deferred-begin.ts), so a transaction opened before
 * `run` sends it inside the window, with or just before that statement.
 */
export async function statementTexts(run: () => Promise<unknown>): Promise<string[]> {
  const query = pg.Client.prototype.query;
  const texts: string[] = [];
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    const text = String(typeof first === "string" ? first : (first as { text?: unknown }).text);
    if (!/^\s*begin\s*;?\s*$/i.test(text)) texts.push(text);
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  try {
    await run();
  } finally {
    pg.Client.prototype.query = query;
  }
  return texts;
}

export async function statementCount(run: () => Promise<unknown>): Promise<number> {
  return (await statementTexts(run)).length;
}
