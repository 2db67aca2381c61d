/**
 * Preloaded into the service's process by the bench (node --import), never
 * by the service itself: counts the SQL statements (and BEGINs) every pg
 * client of the process sends, and answers the bench's "sql" message over
 * the IPC channel with the totals so far.
 */
import { writeFileSync } from "node:fs";
import pg from "pg";
import { statementsOf } from "../src/db/deferred-begin.ts";

let statements = 0;
let transactions = 0;
// BENCH_SQL_TEXTS=<file>: the statements by text, most sent first, written there when the process exits.
const textsFile = process.env.BENCH_SQL_TEXTS;
const byText = textsFile ? new Map<string, number>() : undefined;
if (textsFile && byText) {
  process.on("exit", () => {
    const lines = [...byText]
      .sort((a, b) => b[1] - a[1])
      .map(([text, n]) => `${n}\t${text.replace(/\s+/g, " ")}`);
    writeFileSync(textsFile, `${lines.join("\n")}\n`);
  });
}
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0];
  let text = typeof first === "string" ? first : (first as { text?: unknown } | undefined)?.text;
  // One query, counted once: a transaction's BEGIN and COMMIT go with its statements (src/db/deferred-begin.ts),
  // and such a query's text holds its values: listed by the statements it runs (`begin; <text>; commit`).
  statements++;
  if (typeof text === "string" && /^(begin; )?execute \w+/.test(text)) {
    const begins = text.startsWith("begin; ") ? ["begin"] : [];
    const commits = text.endsWith("; commit") ? ["commit"] : [];
    text = [...begins, ...statementsOf(this, text), ...commits].join("; ");
  }
  if (byText && typeof text === "string") byText.set(text, (byText.get(text) ?? 0) + 1);
  if (typeof text === "string" && /^\s*begin\b/i.test(text)) transactions++;
  return query.apply(this, args);
};

process.on("message", (message: unknown) => {
  if (message === "sql") process.send?.({ statements, transactions });
});
// The channel must not keep the service alive once it has stopped.
process.channel?.unref();
