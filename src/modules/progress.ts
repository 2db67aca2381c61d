import type { BusEvent } from "../relay/bus.ts";

/**
 * A partner-reported progression: each state may move to any later one (a
 * carrier may report DELIVERED straight away), never back, so late and
 * repeated reports change nothing. `exit` (returned, cancelled) is allowed
 * from every state before the last one.
 */
export function progressTransitions<S extends string>(
  forward: readonly S[],
  exit: S,
): Partial<Record<S, readonly S[]>> {
  const transitions: Partial<Record<S, readonly S[]>> = {};
  forward.forEach((state, i) => {
    const later = forward.slice(i + 1);
    if (later.length > 0) transitions[state] = [...later, exit];
  });
  return transitions;
}

/** The state a partner's report event names, checked against the module's states. */
export function reportedState<S extends string>(event: BusEvent, states: readonly S[]): S {
  const state = event.payload.state;
  if (!states.includes(state as S)) throw new Error(`report names an unknown state: ${String(state)}`);
  return state as S;
}
