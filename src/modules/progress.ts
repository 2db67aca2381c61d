import { MalformedEvent } from "../relay/listener.ts";
import type { PartnerReport } from "../statemachine/events.ts";

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

/** The state a partner's report names, checked against the module's states. */
export function reportedState<S extends string>(report: PartnerReport, states: readonly S[]): S {
  const state = states.find((s) => s === report.state);
  if (state === undefined) throw new MalformedEvent(`report names an unknown state: ${report.state}`);
  return state;
}
