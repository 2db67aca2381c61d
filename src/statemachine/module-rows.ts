/**
 * The shared executor of module decisions: reads what a module knows of an
 * order (its row, its notes) and applies the actions it decided, inside the
 * listener's transaction: guarded UPDATEs, the row's events in the outbox, notes.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Executor, Tx } from "../db/database.ts";
import { enqueue } from "../relay/outbox.ts";
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

/** The module's row (locked until the transaction ends) and its notes for the order. */
export async function readModuleState<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  orderId: string,
): Promise<ModuleState<S>> {
  const row = await readModuleRow(tx, module, orderId, { lock: true });
  const notes = await tx
    .select({ note: moduleNotes.note })
    .from(moduleNotes)
    .where(and(eq(moduleNotes.module, module.name), eq(moduleNotes.orderId, orderId)));
  return { row: row && { state: row.state }, notes: new Set(notes.map((n) => n.note)) };
}

/** Applies a module's actions for one order, in order, in the caller's transaction. */
export async function applyModuleActions<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  cause: { id: string; orderId: string },
  actions: readonly ModuleAction<S>[],
): Promise<void> {
  // The row's state as this transaction last wrote it, so a move right after a
  // create (Finance issues and settles at once) need not read the row back.
  let written: S | undefined;
  for (const action of actions) {
    switch (action.kind) {
      case "create":
        if (!(await createRow(tx, module, cause, action))) return;
        written = action.state;
        break;
      case "move":
        written = (await moveRow(tx, module, cause, action.to, written)) ? action.to : undefined;
        break;
      case "note":
        await tx
          .insert(moduleNotes)
          .values({ module: module.name, orderId: cause.orderId, note: action.note })
          .onConflictDoNothing();
        break;
      case "retry":
        throw new Error(action.reason);
    }
  }
}

/** Creates the row and emits its first event; false when the row already exists. */
async function createRow<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  cause: { id: string; orderId: string },
  action: Extract<ModuleAction<S>, { kind: "create" }>,
): Promise<boolean> {
  const { state } = action;
  const columns: Record<string, unknown> = { ...action.columns };
  if (action.numbered) {
    if (!module.numbering) throw new Error(`module ${module.name} numbers no rows`);
    columns[module.numbering.column] = await module.numbering.next(tx);
  }
  const [row] = await tx
    .insert(module.table)
    .values({ orderId: cause.orderId, state, ...columns } as never)
    .onConflictDoNothing()
    .returning();
  if (!row) return false;
  const facts = module.announce?.[state]?.(row);
  await emit(tx, module, cause, { state, from: null, version: 1 }, facts);
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
  to: S,
  written: S | undefined,
): Promise<boolean> {
  const from = moduleStatesBefore(module, to);
  const t = module.table;
  const previous = written
    ? { state: written }
    : await readModuleRow(tx, module, cause.orderId, { lock: true });
  if (!previous || !from.includes(previous.state)) return false;
  const moved = await tx
    .update(t)
    .set({ state: to, version: sql`${t.version} + 1`, updatedAt: new Date() } as never)
    .where(and(eq(t.orderId, cause.orderId), inArray(t.state, [...from])))
    .returning({ version: t.version });
  const version = moved[0]?.version as number | undefined;
  if (version === undefined) return false;
  await emit(tx, module, cause, { state: to, from: previous.state, version });
  return true;
}

async function emit<S extends string>(
  tx: Tx,
  module: ModuleDefinition<S>,
  cause: { id: string; orderId: string },
  change: { state: S; from: S | null; version: number },
  facts: Record<string, unknown> = {},
): Promise<void> {
  const payload: ModuleRowChanged = { module: module.name, ...change, cause: cause.id };
  await enqueue(tx, [
    { type: module.events[change.state], orderId: cause.orderId, payload: { ...payload, ...facts } },
  ]);
}
