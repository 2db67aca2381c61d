/**
 * The shared executor of module decisions: reads what a module knows of an
 * order (its row, its notes) and applies the actions it decided, inside the
 * listener's transaction: guarded UPDATEs, the row's events in the outbox, notes.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { type Executor, query, type Tx } from "../db/database.ts";
import { rowValues, type WholeRow, wholeRow } from "../db/rows.ts";
import { enqueue, type NewEvent } from "../relay/outbox.ts";
import type { ModuleRowChanged } from "./events.ts";
import { type ModuleAction, type ModuleDefinition, type ModuleState, moduleStatesBefore } from "./module.ts";
import { moduleNotes } from "./tables.ts";

export interface ModuleRow<S extends string = string> {
  state: S;
  version: number;
  updatedAt: Date;
}

export async function readModuleRow<S extends string>(
  db: Executor,
  module: ModuleDefinition<S>,
  orderId: string,
  options: { lock?: boolean } = {},
): Promise<ModuleRow<S> | undefined> {
  const t = module.table;
  const query = db
    .select({ state: t.state, version: t.version, updatedAt: t.updatedAt })
    .from(t)
    .where(eq(t.orderId, orderId));
  const [row] = options.lock ? await query.for("update") : await query;
  return row as ModuleRow<S> | undefined;
}

/** The module's row (locked until the transaction ends) and its notes for the order, in one statement. */
export async function readModuleState<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  orderId: string,
): Promise<ModuleState<S>> {
  const t = module.table;
  const n = moduleNotes;
  const [known] = await query<{ state: S | null; notes: string[] }>(
    tx,
    sql`select (select ${t.state} from ${t} where ${t.orderId} = ${orderId} for update) as state,
      array(select ${n.note} from ${n} where ${n.module} = ${module.name} and ${n.orderId} = ${orderId}) as notes`,
  );
  return { row: known?.state ? { state: known.state } : undefined, notes: new Set(known?.notes) };
}

/**
 * Applies a module's actions for one order, in order, in the caller's
 * transaction, given the row's state as the caller read it (locked: see
 * readModuleState); the rows' events go to the outbox in one statement at the
 * end. A create followed by moves (Finance issues and settles at once) writes
 * the row once, in its last state, and emits an event for every step.
 */
export async function applyModuleActions<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  cause: { id: string; orderId: string; payload?: unknown },
  known: ModuleState<S>,
  actions: readonly ModuleAction<S>[],
): Promise<void> {
  let current = known.row?.state;
  const outbox: NewEvent[] = [];
  // A confirmation names the order's modules: its row events pass them on, so the others can skip them.
  const involvedModules = involvedIn(cause);
  const emit = (
    change: { state: S; from: S | null; version: number },
    facts: Record<string, unknown> = {},
  ) => {
    const payload: ModuleRowChanged = {
      module: module.name,
      ...change,
      cause: cause.id,
      ...(involvedModules ? { involvedModules } : {}),
    };
    outbox.push({
      type: module.events[change.state],
      orderId: cause.orderId,
      payload: { ...payload, ...facts },
    });
  };
  for (let i = 0; i < actions.length; i++) {
    const action = actions[i]!;
    if (action.kind === "create") {
      const path = [action.state];
      while (actions[i + 1]?.kind === "move" && followsFrom(module, path.at(-1)!, actions[i + 1]!)) {
        path.push((actions[++i] as { to: S }).to);
      }
      if (!(await createRow(tx, module, cause, action, path, emit))) break;
      current = path.at(-1);
    } else if (action.kind === "move") {
      if (current !== undefined && (await moveRow(tx, module, cause, current, action.to, emit)))
        current = action.to;
    } else if (action.kind === "note") {
      await tx
        .insert(moduleNotes)
        .values({ module: module.name, orderId: cause.orderId, note: action.note })
        .onConflictDoNothing();
    } else {
      throw new Error(action.reason);
    }
  }
  await enqueue(tx, outbox);
}

function involvedIn(cause: { payload?: unknown }): string[] | undefined {
  const modules = (cause.payload as { involvedModules?: unknown } | undefined)?.involvedModules;
  return Array.isArray(modules) ? (modules as string[]) : undefined;
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

type Emit<S extends string> = (
  change: { state: S; from: S | null; version: number },
  facts?: Record<string, unknown>,
) => void;

function followsFrom<S extends string>(
  module: ModuleDefinition<S>,
  state: S,
  next: ModuleAction<S>,
): boolean {
  return next.kind === "move" && moduleStatesBefore(module, next.to).includes(state);
}

/**
 * Creates the row in the last state of `path` (its version counting each
 * step) and emits an event for each step; false when the row already exists.
 */
async function createRow<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  cause: { id: string; orderId: string },
  action: Extract<ModuleAction<S>, { kind: "create" }>,
  path: readonly S[],
  emit: Emit<S>,
): Promise<boolean> {
  const columns: Record<string, unknown> = { ...action.columns };
  if (action.numbered) {
    if (!module.numbering) throw new Error(`module ${module.name} numbers no rows`);
    columns[module.numbering.column] = await module.numbering.next(tx);
  }
  const whole = wholeRowOf(module);
  const values = { orderId: cause.orderId, state: path.at(-1), version: path.length, ...columns };
  const [row] = await whole.all(
    tx,
    sql`insert into ${module.table} ${rowValues(module.table, values as never)}
      on conflict do nothing returning ${whole.columns}`,
  );
  if (!row) return false;
  path.forEach((state, i) => {
    // What the event of the state it was created in carries besides the state, read from the row as written.
    const facts = i === 0 ? module.announce?.[state]?.(row) : undefined;
    const passing = i < path.length - 1 ? { passing: true } : {};
    emit({ state, from: i === 0 ? null : path[i - 1]!, version: i + 1 }, { ...facts, ...passing });
  });
  return true;
}

/**
 * Moves the row to `to` only from a state its transition table allows (a
 * guarded UPDATE, so events that arrive late or twice find the row moved on
 * and change nothing).
 */
async function moveRow<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  cause: { id: string; orderId: string },
  from: S,
  to: S,
  emit: Emit<S>,
): Promise<boolean> {
  const before = moduleStatesBefore(module, to);
  if (!before.includes(from)) return false;
  const t = module.table;
  const moved = await tx
    .update(t)
    .set({ state: to, version: sql`${t.version} + 1`, updatedAt: new Date() } as never)
    .where(and(eq(t.orderId, cause.orderId), inArray(t.state, before)))
    .returning({ version: t.version });
  const version = moved[0]?.version as number | undefined;
  if (version === undefined) return false;
  emit({ state: to, from, version });
  return true;
}
