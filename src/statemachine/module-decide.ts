/**
 * A module's reaction to one event, as a pure function of the event and what
 * the module knows of the order (its row, its notes): the module's own
 * decision plus the rules every module shares. No I/O, so each module's rules
 * are tested on their own.
 */
import type { DomainEvent } from "./events.ts";
import { type ModuleAction, type ModuleDefinition, type ModuleState, moduleStatesBefore } from "./module.ts";

export const cancelledNote = "cancelled";

/** The event types the module reacts to: its `on` keys, and OrderCancelled (every module does, rule 4). */
export function moduleHeard(module: Pick<ModuleDefinition, "on">): string[] {
  return [...new Set(["OrderCancelled", ...Object.keys(module.on)])];
}

/**
 * Whether the event alone shows the module has nothing to do: an event that
 * names the order's modules (a confirmation, and the row events it caused)
 * without it, since an order's modules are decided at placement; or an event
 * of its own row in a state the row only passed through, as the transaction
 * that wrote it had already decided what follows. Its listener then skips
 * the delivery without a transaction; decideModule answers no action for it
 * all the same.
 */
export function moduleSkips(module: Pick<ModuleDefinition, "name">, event: DomainEvent): boolean {
  const { payload } = event;
  if (
    "involvedModules" in payload &&
    payload.involvedModules &&
    !payload.involvedModules.includes(module.name)
  )
    return true;
  return "passing" in payload && payload.passing === true && payload.module === module.name;
}

/**
 * The actions to apply, in order, as the executor will apply them: a move
 * the row's transitions do not allow from the state it will be in is left
 * out (the guarded UPDATE would change nothing), and a row created after the
 * order was cancelled is rolled back at once.
 */
export function decideModule<S extends string>(
  module: ModuleDefinition<S>,
  event: DomainEvent,
  state: ModuleState<S>,
): ModuleAction<S>[] {
  if (event.type === "OrderCancelled") {
    // Without a row there is nothing to roll back yet: remember it for when the row comes.
    return state.row
      ? allowed(module, state, module.onCancel(state.row))
      : [{ kind: "note", note: cancelledNote }];
  }
  if (moduleSkips(module, event)) return [];
  const decide = module.on[event.type] as
    | ((e: DomainEvent, s: ModuleState<S>) => ModuleAction<S>[])
    | undefined;
  return allowed(module, state, decide?.(event, state) ?? []);
}

function allowed<S extends string>(
  module: ModuleDefinition<S>,
  state: ModuleState<S>,
  actions: readonly ModuleAction<S>[],
): ModuleAction<S>[] {
  const out: ModuleAction<S>[] = [];
  let current = state.row?.state;
  /** Takes one action into `out`; false when the actions after it must not run. */
  const take = (action: ModuleAction<S>): boolean => {
    switch (action.kind) {
      case "create":
        // The row is there already: whatever followed from creating it was decided before.
        if (current !== undefined) return false;
        out.push(action);
        current = action.state;
        if (state.notes.has(cancelledNote)) return module.onCancel({ state: current }).every(take);
        return true;
      case "move":
        if (current !== undefined && moduleStatesBefore(module, action.to).includes(current)) {
          out.push(action);
          current = action.to;
        }
        return true;
      case "note":
        out.push(action);
        return true;
      case "retry":
        out.push(action);
        return false;
    }
  };
  actions.every(take);
  return out;
}
