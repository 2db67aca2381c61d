/**
 * A pool client that sends a transaction's BEGIN together with its first
 * statement, and a statement the caller hands over for the end together with
 * the COMMIT: a transaction of n statements costs n round trips, not n + 2.
 *
 * drizzle-orm's transaction() sends `begin` on its own and waits for the
 * answer, and `commit` the same way; every listener batch, relay batch and
 * sender claim is a transaction, so BEGIN and COMMIT were about one statement
 * in four on the hot paths, each a socket write that wakes a PostgreSQL
 * backend. Here `begin` is held back and goes out with the next statement as
 * one simple-protocol query, `begin; execute <name>(<values>)`; and a last
 * statement whose answer nobody reads (an outbox insert, the relay's marks)
 * can be queued with sendAtCommit() to go out as `execute ...; commit`. The
 * statements are ones this connection has prepared already (named statements,
 * see database.ts), so PostgreSQL runs them with their kept plans, and their
 * values are sent as quoted literals, which PostgreSQL types as it types the
 * text parameters of a Bind, so each statement sees the same values. Anything
 * else (a statement not prepared on this connection yet, a callback, a
 * stream, binary values) first sends what is held, then itself, as before.
 *
 * PostgreSQL runs the statements of one query in the open transaction block
 * and stops at the first that fails: the block is then aborted (the COMMIT
 * after it never runs) for the ROLLBACK that drizzle sends, exactly as with
 * one round trip each. A queued statement's error surfaces at the commit.
 */
import pg from "pg";

/** pg's own conversion of a parameter to its text form, as its Bind sends it (not in pg's types). */
const { prepareValue } = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils;
const { escapeLiteral } = pg;

/** What the client keeps per connection (pg's own field): statement name → text, once parsed. */
interface Internals {
  connection?: { parsedStatements?: Record<string, string> };
}

export interface QueryConfig {
  text: string;
  name?: string;
  values?: unknown[];
  rowMode?: string;
  types?: unknown;
  submit?: unknown;
}

type Query = (this: pg.Client, ...args: unknown[]) => unknown;

/** What a client holds back: the BEGIN not sent yet, the statements for the commit. */
interface Held {
  begin: boolean;
  atCommit: string[];
}

const holding = new WeakMap<pg.Client, Held>();

/** The base class's query, looked up at each call: a preloaded counter (bench/sql-counter.ts) may wrap it. */
const send = (client: pg.Client, ...args: unknown[]): unknown =>
  (pg.Client.prototype.query as unknown as Query).apply(client, args);

const begin = /^\s*begin\s*;?\s*$/i;
const commit = /^\s*(commit|end)\s*;?\s*$/i;
const rollback = /^\s*(rollback|abort)\s*;?\s*$/i;

export class DeferredBeginClient extends pg.Client {}

(DeferredBeginClient.prototype as unknown as { query: Query }).query = function query(
  this: pg.Client,
  ...args: unknown[]
): unknown {
  const config = promisedQuery(args);
  const held = holding.get(this);
  if (!config) return sendHeldThen(this, held, args);
  const bare = !config.values?.length;
  if (bare && begin.test(config.text)) {
    if (held) return sendHeldThen(this, held, args);
    holding.set(this, { begin: true, atCommit: [] });
    return Promise.resolve(emptyResult("BEGIN"));
  }
  if (!held) return send(this, ...args);
  holding.delete(this);
  const before = heldTexts(held);
  if (bare && rollback.test(config.text)) {
    // The queued statements never run; a transaction that sent nothing has nothing to roll back.
    return held.begin ? Promise.resolve(emptyResult("ROLLBACK")) : send(this, ...args);
  }
  if (bare && commit.test(config.text)) {
    if (held.atCommit.length === 0) return Promise.resolve(emptyResult("COMMIT"));
    return last(send(this, { text: [...before, "commit"].join("; ") }));
  }
  const statement = executeOf(this, config);
  if (!statement) return sendThen(this, before, args);
  return last(
    send(this, {
      text: [...before, statement].join("; "),
      ...(config.rowMode ? { rowMode: config.rowMode } : {}),
      ...(config.types ? { types: config.types } : {}),
    }),
  );
};

/**
 * Queues a statement to go out with the transaction's COMMIT (or before the
 * next statement sent in it), when the client can: a DeferredBeginClient the
 * statement was prepared on. Answers false when it cannot, and the caller
 * sends the statement itself.
 */
export function sendAtCommit(client: unknown, config: QueryConfig): boolean {
  if (!(client instanceof DeferredBeginClient)) return false;
  const statement = executeOf(client, config);
  if (!statement) return false;
  const held = holding.get(client);
  if (held) held.atCommit.push(statement);
  else holding.set(client, { begin: false, atCommit: [statement] });
  return true;
}

/** The query's config when it is a promise-returning text query, else undefined (sent as it came). */
function promisedQuery([first, second, ...rest]: unknown[]): QueryConfig | undefined {
  if (rest.length > 0 || typeof second === "function") return undefined;
  const values = Array.isArray(second) ? second : undefined;
  if (typeof first === "string") return { text: first, values };
  if (typeof first !== "object" || first === null) return undefined;
  const config = first as QueryConfig;
  if (typeof config.text !== "string" || config.submit !== undefined) return undefined;
  return { ...config, values: values ?? config.values };
}

/** What is held goes out first, as one query (pg sends a client's queries in order), then the call as it came. */
function sendHeldThen(client: pg.Client, held: Held | undefined, args: unknown[]): unknown {
  if (!held) return send(client, ...args);
  holding.delete(client);
  return sendThen(client, heldTexts(held), args);
}

const heldTexts = (held: Held): string[] => [...(held.begin ? ["begin"] : []), ...held.atCommit];

function sendThen(client: pg.Client, before: string[], args: unknown[]): unknown {
  const sent = send(client, before.join("; ")) as Promise<unknown>;
  if (typeof args[args.length - 1] === "function") {
    // A callback query: queued behind them, and failing with them if the connection does.
    sent.catch(() => {});
    return send(client, ...args);
  }
  return sent.then(() => send(client, ...args));
}

/** The answer of a multi-statement query's last statement. */
function last(results: unknown): Promise<pg.QueryResult> {
  return (results as Promise<pg.QueryResult | pg.QueryResult[]>).then((r) =>
    Array.isArray(r) ? r.at(-1)! : r,
  );
}

/** `execute name(literals)`, or undefined when the statement cannot go that way. */
function executeOf(client: pg.Client, config: QueryConfig): string | undefined {
  const { name, text } = config;
  if (!name || !/^[a-z_][a-z0-9_]*$/i.test(name)) return undefined;
  const parsed = (client as unknown as Internals).connection?.parsedStatements;
  if (parsed?.[name] !== text) return undefined;
  const literals: string[] = [];
  for (const value of config.values ?? []) {
    const prepared = prepareValue(value);
    if (prepared === null || prepared === undefined) literals.push("null");
    // A NUL would end the query's text early; bound, it fails as PostgreSQL says.
    else if (typeof prepared === "string" && !prepared.includes("\0")) literals.push(escapeLiteral(prepared));
    else return undefined;
  }
  return `execute ${name}${literals.length > 0 ? `(${literals.join(", ")})` : ""}`;
}

function emptyResult(command: string): pg.QueryResult {
  return { command, rowCount: null, oid: 0, fields: [], rows: [] } as unknown as pg.QueryResult;
}

/**
 * The texts of the prepared statements a query of this client runs: a merged
 * query (`begin; execute q1(...); commit`) by the statements it executes, its
 * BEGIN and COMMIT left out; any other query as itself. For counters that
 * count statements rather than queries (tests, the bench).
 */
export function statementsOf(client: unknown, text: string): string[] {
  if (!/^(begin; )?execute \w+/.test(text)) return [text];
  const parsed = (client as Internals).connection?.parsedStatements ?? {};
  return [...text.matchAll(/(?:^|; )execute (\w+)/g)].map((m) => parsed[m[1]!] ?? m[0]);
}
