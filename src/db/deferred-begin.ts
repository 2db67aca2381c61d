/**
 * A pool client that sends a transaction's BEGIN together with its first
 * statement, in one round trip instead of two.
 *
 * drizzle-orm's transaction() sends `begin` on its own and waits for the
 * answer; every listener batch, relay batch and sender claim is a
 * transaction, so BEGIN was about one statement in eight on the hot paths,
 * each a socket write that wakes a PostgreSQL backend. Here `begin` is held
 * back and goes out with the next statement as one simple-protocol query,
 * `begin; execute <name>(<values>)`: the statement is one this connection has
 * prepared already (named statements, see database.ts), so PostgreSQL runs
 * it with its kept plan, and its values are sent as quoted literals, which
 * PostgreSQL types as it types the text parameters of a Bind, so the
 * statement sees the same values. Anything else (a statement not prepared on
 * this connection yet, a callback, a stream, binary values) sends the held
 * BEGIN first and then itself, as before.
 *
 * PostgreSQL runs a multi-statement query's BEGIN as BEGIN: the block stays
 * open after the query, and a failing statement leaves it aborted for the
 * ROLLBACK that drizzle sends, exactly as with two round trips.
 */
import pg from "pg";

/** pg's own conversion of a parameter to its text form, as its Bind sends it (not in pg's types). */
const { prepareValue } = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils;
const { escapeLiteral } = pg;

/** What the client keeps per connection (pg's own field): statement name → text, once parsed. */
interface Internals {
  connection?: { parsedStatements?: Record<string, string> };
}

interface QueryConfig {
  text: string;
  name?: string;
  values?: unknown[];
  rowMode?: string;
  types?: unknown;
  submit?: unknown;
}

type Query = (this: pg.Client, ...args: unknown[]) => unknown;

const held = new WeakSet<pg.Client>();

/** The base class's query, looked up at each call: a preloaded counter (bench/sql-counter.ts) may wrap it. */
const send = (client: pg.Client, ...args: unknown[]): unknown =>
  (pg.Client.prototype.query as unknown as Query).apply(client, args);

const transactionEnd = /^\s*(commit|rollback|end|abort)\s*;?\s*$/i;

export class DeferredBeginClient extends pg.Client {}

(DeferredBeginClient.prototype as unknown as { query: Query }).query = function query(
  this: pg.Client,
  ...args: unknown[]
): unknown {
  const [first, second] = args;
  const promised = args.length <= 2 && typeof second !== "function";
  const config: QueryConfig | undefined =
    typeof first === "string"
      ? { text: first, values: Array.isArray(second) ? second : undefined }
      : typeof first === "object" && first !== null && typeof (first as QueryConfig).text === "string"
        ? {
            ...(first as QueryConfig),
            values: Array.isArray(second) ? second : (first as QueryConfig).values,
          }
        : undefined;
  if (!promised || !config || config.submit !== undefined) return sendHeld(this, args);
  if (/^\s*begin\s*;?\s*$/i.test(config.text) && !config.values?.length) {
    if (held.has(this)) return sendHeld(this, args);
    held.add(this);
    return Promise.resolve(emptyResult("BEGIN"));
  }
  if (!held.has(this)) return send(this, ...args);
  // A transaction that sent nothing has nothing to end.
  if (transactionEnd.test(config.text) && !config.values?.length) {
    held.delete(this);
    return Promise.resolve(emptyResult(config.text.trim().split(/\s|;/)[0]!.toUpperCase()));
  }
  const merged = withBegin(this, config);
  if (!merged) return sendHeld(this, args);
  held.delete(this);
  const results = send(this, {
    text: merged,
    ...(config.rowMode ? { rowMode: config.rowMode } : {}),
    ...(config.types ? { types: config.types } : {}),
  }) as Promise<pg.QueryResult[]>;
  return results.then((both) => both[1]);
};

/** The held BEGIN goes out first (pg sends a client's queries in order), then the call as it came. */
function sendHeld(client: pg.Client, args: unknown[]): unknown {
  if (held.delete(client)) {
    const begun = send(client, "begin") as Promise<unknown>;
    const last = args[args.length - 1];
    if (typeof last === "function") {
      // A callback query: queued behind the BEGIN, and failing with it if the connection does.
      begun.catch(() => {});
      return send(client, ...args);
    }
    return begun.then(() => send(client, ...args));
  }
  return send(client, ...args);
}

/** `begin; execute name(literals)`, or undefined when the statement cannot go that way. */
function withBegin(client: pg.Client, config: QueryConfig): string | undefined {
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
  return `begin; execute ${name}${literals.length > 0 ? `(${literals.join(", ")})` : ""}`;
}

function emptyResult(command: string): pg.QueryResult {
  return { command, rowCount: null, oid: 0, fields: [], rows: [] } as unknown as pg.QueryResult;
}
