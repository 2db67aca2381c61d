/**
 * The shared executor of module decisions: reads what a module knows of a
 * batch's orders (their rows, locked, and notes) and writes what the batch's
 * plan (module-plan.ts) decided, inside the listener's transaction, one
 * statement per kind of write whatever the batch's size: the created rows
 * (with their numbers), the moved rows, the notes, the rows' events in the
 * outbox.
 */
import { sql } from "drizzle-orm";
import { query, type Tx } from "../db/database.ts";
import { rowsValues, textArray, type WholeRow, wholeRow } from "../db/rows.ts";
import { enqueue, type NewEvent } from "../relay/outbox.ts";
import type { ModuleDefinition } from "./module.ts";
import type { KnownOrder, ModulePlan, PlannedCreate, PlannedEvent, PlannedMove } from "./module-plan.ts";
import { moduleNotes } from "./tables.ts";

/**
 * The module's rows of these orders (locked until the transaction ends, in
 * id order) and its notes of them, in one statement. An order without a row
 * or notes is known all the same: as having none.
 */
export async function readKnownOrders<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  orderIds: readonly string[],
): Promise<Map<string, KnownOrder<S>>> {
  const ids = [...new Set(orderIds)].sort();
  if (ids.length === 0) return new Map();
  const t = module.table;
  const n = moduleNotes;
  const rows = await query<{ n: number | string; state: S | null; version: number | null; notes: string[] }>(
    tx,
    sql`select k.n, r.state, r.version,
        array(select ${n.note} from ${n} where ${n.module} = ${module.name} and ${n.orderId} = k.order_id) as notes
      from unnest(${`{${ids.join(",")}}`}::uuid[]) with ordinality as k(order_id, n)
      left join lateral (
        select ${t.state} as state, ${t.version} as version from ${t} where ${t.orderId} = k.order_id for update
      ) as r on true
      order by k.n`,
  );
  // By position, so an id is found as the caller spelled it.
  return new Map(
    rows.map((row) => [
      ids[Number(row.n) - 1]!,
      {
        row: row.state === null ? undefined : { state: row.state, version: Number(row.version) },
        notes: new Set(row.notes),
      },
    ]),
  );
}

/** Writes the plan's rows, notes and events; a kind of write the plan has none of sends no statement. */
export async function applyModulePlan<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  plan: ModulePlan<S>,
): Promise<void> {
  const created = await createRows(tx, module, plan.creates);
  await moveRows(tx, module, plan.moves);
  await addNotes(tx, module, plan.notes);
  await enqueue(
    tx,
    plan.events.map((event) => outboxEvent(module, event, created)),
  );
}

const wholeRows = new WeakMap<ModuleDefinition["table"], WholeRow<Record<string, unknown>>>();

/** The module's whole row, for its SQL templates (see wholeRow), built once per table. */
function wholeRowOf(module: ModuleDefinition): WholeRow<Record<string, unknown>> {
  const known = wholeRows.get(module.table);
  if (known) return known;
  const whole = wholeRow(module.table);
  wholeRows.set(module.table, whole);
  return whole;
}

/**
 * Inserts the created rows in one statement, each in its last state, the
 * numbered ones with the module's next numbers in stream order; answers them
 * as written, by order. The rows were read as absent under the batch's
 * locks: one that exists all the same fails the batch rather than skip an
 * event or a number.
 */
async function createRows<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  creates: readonly PlannedCreate<S>[],
): Promise<Map<string, Record<string, unknown>>> {
  if (creates.length === 0) return new Map();
  const numbered = creates.filter((c) => c.numbered).length;
  const numbering = module.numbering;
  if (numbered > 0 && !numbering) throw new Error(`module ${module.name} numbers no rows`);
  const taken = numbered > 0 ? numbering!.take(numbered) : undefined;
  let next = 0;
  const values = creates.map((c) => ({
    orderId: c.orderId,
    state: c.row.state,
    version: c.row.version,
    ...c.columns,
    ...(c.numbered ? { [numbering!.column]: taken!.nth(next++) } : {}),
  }));
  const whole = wholeRowOf(module);
  const rows = await whole.all(
    tx,
    sql`${taken ? sql`with numbers as (${taken.numbers}) ` : sql``}insert into ${module.table}
      ${rowsValues(module.table, values as never)} on conflict do nothing returning ${whole.columns}`,
  );
  const byOrder = new Map(rows.map((row) => [row.orderId as string, row]));
  const missing = creates.find((c) => !byOrder.has(c.orderId));
  if (missing) throw new Error(`module ${module.name}: order ${missing.orderId} has a row already`);
  return byOrder;
}

/**
 * Moves each row from the state and version it was read in to its last one,
 * in one guarded UPDATE: the plan only took the steps the module's
 * transitions allow from the state read, and a row found otherwise (nothing
 * should change it under the batch's locks) fails the batch rather than have
 * its events tell a wrong story.
 */
async function moveRows<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  moves: readonly PlannedMove<S>[],
): Promise<void> {
  if (moves.length === 0) return;
  const t = module.table;
  const list = (values: readonly (string | number)[]) => `{${values.join(",")}}`;
  const moved = await query<{ order_id: string }>(
    tx,
    sql`update ${t} set ${sql.identifier(t.state.name)} = m.to_state,
        ${sql.identifier(t.version.name)} = m.to_version,
        ${sql.identifier(t.updatedAt.name)} = ${t.updatedAt.mapToDriverValue(new Date())}
      from unnest(${list(moves.map((m) => m.orderId))}::uuid[], ${list(moves.map((m) => m.from.state))}::text[],
        ${list(moves.map((m) => m.from.version))}::int[], ${list(moves.map((m) => m.to.state))}::text[],
        ${list(moves.map((m) => m.to.version))}::int[]) as m(order_id, from_state, from_version, to_state, to_version)
      where ${t.orderId} = m.order_id and ${t.state} = m.from_state and ${t.version} = m.from_version
      returning ${t.orderId}`,
  );
  if (moved.length !== moves.length)
    throw new Error(`module ${module.name}: a row changed under the batch's lock`);
}

/** Remembers the notes in one statement; a note known already stays as it was. */
async function addNotes(
  tx: Tx,
  module: ModuleDefinition,
  notes: readonly { orderId: string; note: string }[],
): Promise<void> {
  if (notes.length === 0) return;
  await query(
    tx,
    sql`insert into ${moduleNotes} (module, order_id, note)
      select ${module.name}, n.order_id, n.note
      from unnest(${`{${notes.map((n) => n.orderId).join(",")}}`}::uuid[], ${textArray(notes.map((n) => n.note))}::text[])
        as n(order_id, note)
      on conflict do nothing`,
  );
}

/** The event for the outbox, with the facts its state announces read from the row as its creating event wrote it. */
function outboxEvent<S extends string>(
  module: ModuleDefinition<S>,
  { announce, ...event }: PlannedEvent<S>,
  created: ReadonlyMap<string, Record<string, unknown>>,
): NewEvent {
  if (!announce) return event;
  const row = { ...created.get(event.orderId), ...announce.row };
  return { ...event, payload: { ...event.payload, ...module.announce?.[announce.state]?.(row as never) } };
}
