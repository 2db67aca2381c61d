/**
 * A batch of events for one module, planned without I/O: each event decided
 * (decideModule) in stream order against the order as the batch's earlier
 * events left it, and the writes that follow gathered per order, so that the
 * executor (module-rows.ts) sends each kind of write once for the batch. A
 * row created in the batch is written once, in its last state; a row that
 * existed moves once, to its last state. The events are those handling the
 * events one at a time would emit, in the same order.
 */
import type { DomainEvent, ModuleRowChanged } from "./events.ts";
import { type ModuleAction, type ModuleDefinition, moduleStatesBefore } from "./module.ts";
import { decideModule } from "./module-decide.ts";

/** A module's row as the batch finds or leaves it. */
export interface RowVersion<S extends string> {
  state: S;
  version: number;
}

/** What a module knows of an order when the batch starts: its row (locked by the reader) and its notes. */
export interface KnownOrder<S extends string> {
  row: RowVersion<S> | undefined;
  notes: ReadonlySet<string>;
}

export interface PlannedCreate<S extends string> {
  orderId: string;
  /** The row as the batch leaves it: its last state, one version per step since its creation. */
  row: RowVersion<S>;
  columns: Record<string, unknown>;
  /** Takes the module's next number (`numbering`). */
  numbered: boolean;
}

export interface PlannedMove<S extends string> {
  orderId: string;
  /** The row as it was read: the UPDATE changes it only if it still is. */
  from: RowVersion<S>;
  to: RowVersion<S>;
}

export interface PlannedEvent<S extends string> {
  type: string;
  orderId: string;
  payload: ModuleRowChanged & Record<string, unknown>;
  /**
   * Carries the `announce` facts of the state it was created in, read from
   * the created row as the event that created it wrote it (its state and
   * version then: later events of the batch may have moved it on).
   */
  announce?: { state: S; row: RowVersion<S> };
}

export interface ModulePlan<S extends string> {
  creates: PlannedCreate<S>[];
  moves: PlannedMove<S>[];
  notes: { orderId: string; note: string }[];
  events: PlannedEvent<S>[];
}

/** An order while the batch is planned: its row and notes so far, and the write that will leave it so. */
interface Order<S extends string> {
  id: string;
  row: RowVersion<S> | undefined;
  notes: Set<string>;
  create?: PlannedCreate<S>;
  move?: PlannedMove<S>;
}

/**
 * Plans the batch's writes and events. `known` holds what the module knew of
 * each order before the batch (an order it lacks: no row, no notes). Throws
 * as one-at-a-time handling did: a `retry` action's reason, a decision's error.
 */
export function planModuleBatch<S extends string>(
  module: ModuleDefinition<S>,
  events: readonly DomainEvent[],
  known: ReadonlyMap<string, KnownOrder<S>>,
): ModulePlan<S> {
  const plan: ModulePlan<S> = { creates: [], moves: [], notes: [], events: [] };
  const orders = new Map<string, Order<S>>();
  for (const event of events) {
    let order = orders.get(event.orderId);
    if (!order) {
      const before = known.get(event.orderId);
      order = { id: event.orderId, row: before?.row, notes: new Set(before?.notes) };
      orders.set(order.id, order);
    }
    const state = { row: order.row && { state: order.row.state }, notes: order.notes };
    planActions(module, plan, order, event, decideModule(module, event, state));
  }
  return plan;
}

/**
 * One event's actions, in order, as the executor of one event applied them:
 * a create followed by moves is one path, its events emitted for each step
 * (all but the last `passing`); a move the row's transitions do not allow
 * from where it is changes nothing.
 */
function planActions<S extends string>(
  module: ModuleDefinition<S>,
  plan: ModulePlan<S>,
  order: Order<S>,
  cause: DomainEvent,
  actions: readonly ModuleAction<S>[],
): void {
  // A confirmation names the order's modules: its row events pass them on, so the others can skip them.
  const involvedModules = involvedIn(cause);
  const emit = (
    change: { state: S; from: S | null; version: number },
    { passing = false, announce }: { passing?: boolean; announce?: PlannedEvent<S>["announce"] } = {},
  ) =>
    plan.events.push({
      type: module.events[change.state],
      orderId: order.id,
      payload: {
        module: module.name,
        ...change,
        cause: cause.id,
        ...(involvedModules ? { involvedModules } : {}),
        ...(passing ? { passing: true } : {}),
      },
      ...(announce ? { announce } : {}),
    });
  for (let i = 0; i < actions.length; i++) {
    const action = actions[i]!;
    if (action.kind === "create") {
      const path = [action.state];
      while (actions[i + 1]?.kind === "move" && followsFrom(module, path.at(-1)!, actions[i + 1]!)) {
        path.push((actions[++i] as { to: S }).to);
      }
      // The row is there already (an INSERT would conflict): this and what follows change nothing.
      if (order.row) return;
      const row = { state: path.at(-1)!, version: path.length };
      order.row = row;
      order.create = { orderId: order.id, row, columns: { ...action.columns }, numbered: !!action.numbered };
      plan.creates.push(order.create);
      path.forEach((state, step) => {
        const announce = step === 0 && module.announce?.[state] ? { state, row } : undefined;
        const from = step === 0 ? null : path[step - 1]!;
        emit({ state, from, version: step + 1 }, { passing: step < path.length - 1, announce });
      });
    } else if (action.kind === "move") {
      const from = order.row;
      if (!from || !moduleStatesBefore(module, action.to).includes(from.state)) continue;
      const row = { state: action.to, version: from.version + 1 };
      order.row = row;
      if (order.create) order.create.row = row;
      else if (order.move) order.move.to = row;
      else {
        order.move = { orderId: order.id, from, to: row };
        plan.moves.push(order.move);
      }
      emit({ state: row.state, from: from.state, version: row.version });
    } else if (action.kind === "note") {
      if (order.notes.has(action.note)) continue;
      order.notes.add(action.note);
      plan.notes.push({ orderId: order.id, note: action.note });
    } else {
      throw new Error(action.reason);
    }
  }
}

function involvedIn(cause: { payload?: unknown }): string[] | undefined {
  const modules = (cause.payload as { involvedModules?: unknown } | undefined)?.involvedModules;
  return Array.isArray(modules) ? (modules as string[]) : undefined;
}

function followsFrom<S extends string>(
  module: ModuleDefinition<S>,
  state: S,
  next: ModuleAction<S>,
): boolean {
  return next.kind === "move" && moduleStatesBefore(module, next.to).includes(state);
}
