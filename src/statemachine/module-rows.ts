import { and, eq, inArray, sql } from "drizzle-orm";
import type { Executor } from "../db/database.ts";
import { enqueue } from "../relay/outbox.ts";
import { type ModuleContext, type ModuleDefinition, moduleStatesBefore } from "./module.ts";
import { moduleNotes } from "./tables.ts";

export interface ModuleRow<S extends string = string> {
  state: S;
  version: number;
  updatedAt: Date;
}

/** "Invoice" + "issued" = "InvoiceIssued": the event a module's row emits when it enters a state. */
export function moduleEventType(module: Pick<ModuleDefinition, "entity">, state: string): string {
  return module.entity + state.charAt(0).toUpperCase() + state.slice(1);
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

/**
 * Creates the module's row for the order, in its initial state, and emits its first event. Returns
 * false when the row already exists. When the order was cancelled before the
 * row existed, the module's rollback runs at once, in the same transaction.
 */
export async function createModuleRow<S extends string>(
  ctx: ModuleContext<S>,
  columns: Record<string, unknown> = {},
): Promise<boolean> {
  const { tx, module, event } = ctx;
  const state = module.initial;
  const inserted = await tx
    .insert(module.table)
    .values({ orderId: event.orderId, state, ...columns } as never)
    .onConflictDoNothing()
    .returning({ orderId: module.table.orderId });
  if (inserted.length === 0) return false;
  await enqueue(tx, [
    {
      type: moduleEventType(module, state),
      orderId: event.orderId,
      payload: { module: module.name, state, from: null, version: 1, cause: event.id },
    },
  ]);
  if (await hasNote(tx, module.name, event.orderId, "cancelled")) await module.onCancel(ctx);
  return true;
}

/**
 * Moves the module's row to `to` only from a state its transition table
 * allows (a guarded UPDATE, so events that arrive late or twice find the row
 * moved on and change nothing). Returns whether it moved.
 */
export async function moveModuleRow<S extends string>(ctx: ModuleContext<S>, to: S): Promise<boolean> {
  const { tx, module, event } = ctx;
  const from = moduleStatesBefore(module, to);
  const t = module.table;
  const previous = await readModuleRow(tx, module, event.orderId, { lock: true });
  if (!previous || !from.includes(previous.state)) return false;
  const moved = await tx
    .update(t)
    .set({ state: to, version: sql`${t.version} + 1`, updatedAt: new Date() } as never)
    .where(and(eq(t.orderId, event.orderId), inArray(t.state, [...from])))
    .returning({ version: t.version });
  const version = moved[0]?.version as number | undefined;
  if (version === undefined) return false;
  await enqueue(tx, [
    {
      type: moduleEventType(module, to),
      orderId: event.orderId,
      payload: { module: module.name, state: to, from: previous.state, version, cause: event.id },
    },
  ]);
  return true;
}

/** Remembers a fact about an order for a module that has no row for it yet. */
export async function addNote(db: Executor, module: string, orderId: string, note: string): Promise<void> {
  await db.insert(moduleNotes).values({ module, orderId, note }).onConflictDoNothing();
}

export async function hasNote(db: Executor, module: string, orderId: string, note: string): Promise<boolean> {
  const rows = await db
    .select({ note: moduleNotes.note })
    .from(moduleNotes)
    .where(and(eq(moduleNotes.module, module), eq(moduleNotes.orderId, orderId), eq(moduleNotes.note, note)));
  return rows.length > 0;
}
