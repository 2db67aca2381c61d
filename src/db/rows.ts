/**
 * A table's whole row for SQL written as a template: its column list built
 * once, and the driver's values mapped to the row type as the query builder
 * maps them. The builder spends most of its time on every column of a
 * selection or a RETURNING list, each time a statement is built (about 10 µs
 * per column); on the hot paths a template with this list costs a tenth of it.
 */
import { type Column, getTableColumns, is, SQL, type SQLWrapper, sql } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import { type Executor, query } from "./database.ts";

export interface WholeRow<T> {
  /** `"id", "status", ...`: every column, for a SELECT or a RETURNING list. */
  readonly columns: SQL;
  /** A row as the driver answered it, as the query builder would have typed it. */
  read(raw: Record<string, unknown>): T;
  /** Runs the statement (whose result columns are `columns`) and reads each row. */
  all(db: Executor, statement: SQL): Promise<T[]>;
}

export function wholeRow<Table extends PgTable>(table: Table): WholeRow<Table["$inferSelect"]> {
  const fields = Object.entries(getTableColumns(table)) as [string, Column][];
  const columns = sql.raw(fields.map(([, column]) => `"${column.name}"`).join(", "));
  const read = (raw: Record<string, unknown>) => {
    const row: Record<string, unknown> = {};
    for (const [key, column] of fields) {
      const value = raw[column.name];
      row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
    }
    return row as Table["$inferSelect"];
  };
  return {
    columns,
    read,
    all: async (db, statement) => (await query<Record<string, unknown>>(db, statement)).map(read),
  };
}

/** The given properties (undefined left out) as column names and parameters, each value as the query builder sends it. */
function driverPairs<Table extends PgTable>(
  table: Table,
  values: Partial<Table["$inferInsert"]>,
): { name: SQLWrapper; value: SQL }[] {
  const columns = getTableColumns(table) as Record<string, Column>;
  return Object.entries(values)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => {
      const column = columns[key];
      if (!column) throw new Error(`${key} is not a column of the table`);
      return {
        name: sql.identifier(column.name),
        value: sql`${value === null ? null : column.mapToDriverValue(value)}`,
      };
    });
}

/**
 * `("id", "status", ...) select $1, $2, ...`: rowValues as a SELECT, for an
 * INSERT that a WHERE after it may skip (each parameter takes its column's type).
 */
export function rowSelect<Table extends PgTable>(table: Table, values: Partial<Table["$inferInsert"]>): SQL {
  const pairs = driverPairs(table, values);
  return sql`(${sql.join(
    pairs.map((p) => p.name),
    sql`, `,
  )}) select ${sql.join(
    pairs.map((p) => p.value),
    sql`, `,
  )}`;
}

/**
 * `("id", "status", ...) values ($1, $2, ...)` for one row of the table: the
 * given properties only, each as the query builder would send it.
 */
export function rowValues<Table extends PgTable>(table: Table, values: Partial<Table["$inferInsert"]>): SQL {
  return rowsValues(table, [values]);
}

/**
 * `("id", "status", ...) values ($1, $2, ...), ($9, ...)` for rows of the
 * table, for one multi-row INSERT: the properties any of them gives
 * (undefined left out), each as the query builder would send it; a row that
 * lacks one takes the column's default, as the query builder does; a value
 * that is SQL goes in as the expression it is.
 */
export function rowsValues<Table extends PgTable>(
  table: Table,
  rows: readonly Partial<Table["$inferInsert"]>[],
): SQL {
  const columns = getTableColumns(table) as Record<string, Column>;
  const given = rows as readonly Record<string, unknown>[];
  const keys = [...new Set(given.flatMap((row) => Object.keys(row).filter((k) => row[k] !== undefined)))];
  const named = keys.map((key) => {
    const column = columns[key];
    if (!column) throw new Error(`${key} is not a column of the table`);
    return [key, column] as const;
  });
  const tuple = (row: Record<string, unknown>) =>
    sql`(${sql.join(
      named.map(([key, column]) => {
        const value = row[key];
        if (value === undefined) return sql`default`;
        // An expression the statement computes (a number taken in the same statement, say).
        if (is(value, SQL)) return value;
        return sql`${value === null ? null : column.mapToDriverValue(value)}`;
      }),
      sql`, `,
    )})`;
  return sql`(${sql.join(
    named.map(([, column]) => sql.identifier(column.name)),
    sql`, `,
  )}) values ${sql.join(given.map(tuple), sql`, `)}`;
}

/** `"status" = $1, "updated_at" = $2, ...`: an UPDATE's assignments, each value as the query builder sends it. */
export function assignments<Table extends PgTable>(
  table: Table,
  values: Partial<Table["$inferInsert"]>,
): SQL {
  return sql.join(
    driverPairs(table, values).map((p) => sql`${p.name} = ${p.value}`),
    sql`, `,
  );
}

/**
 * A text[] literal of the values, each quoted (a comma or brace inside one
 * must not split it): one array parameter, whatever they hold.
 */
export function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, "\\$&")}"`).join(",")}}`;
}
