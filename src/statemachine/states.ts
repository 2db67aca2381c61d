/**
 * The five shared order states and the transitions between them, as data:
 * the guards, the GraphQL enum and the README diagram all come from here.
 */

export const orderStatuses = ["pending", "confirmed", "fulfilling", "completed", "cancelled"] as const;
export type OrderStatus = (typeof orderStatuses)[number];

export interface Transition {
  from: OrderStatus;
  to: OrderStatus;
  /** What causes it, in the words of the design note. */
  cause: string;
}

export const transitions = [
  { from: "pending", to: "confirmed", cause: "payment callback" },
  { from: "confirmed", to: "fulfilling", cause: "invoice issued" },
  { from: "fulfilling", to: "completed", cause: "every required module terminal-happy" },
  { from: "pending", to: "cancelled", cause: "cancel" },
  { from: "confirmed", to: "cancelled", cause: "cancel or a module's veto" },
  { from: "fulfilling", to: "cancelled", cause: "cancel or a module's veto" },
] as const satisfies readonly Transition[];

export function nextStatuses(from: OrderStatus): OrderStatus[] {
  return transitions.filter((t) => t.from === from).map((t) => t.to);
}

export function canMove(from: OrderStatus, to: OrderStatus): boolean {
  return transitions.some((t) => t.from === from && t.to === to);
}

/** The states a transition into `to` may start from: the guard of `UPDATE ... WHERE status IN (...)`. */
export function statusesBefore(to: OrderStatus): OrderStatus[] {
  return transitions.filter((t) => t.to === to).map((t) => t.from);
}

export function isTerminal(status: OrderStatus): boolean {
  return nextStatuses(status).length === 0;
}
