/**
 * Who caused an event of an order's timeline: the customer, a partner, an
 * admin, or a module (the completion aggregate is the `orders` module). The
 * gateway's commands record their caller on the events they write
 * (order_events.actor, `role:id`); a listener's events are named from their
 * payload instead, so the hot path writes nothing more.
 */

export const actorKinds = ["customer", "partner", "admin", "module", "unknown"] as const;
export type ActorKind = (typeof actorKinds)[number];

export interface Actor {
  kind: ActorKind;
  /** The customer's, partner's or admin's id, or the module's name; empty when unknown. */
  id: string;
}

/** The completion aggregate and its sweep: the orders listener's moves. */
const ordersModule: Actor = { kind: "module", id: "orders" };

export interface TimelineEntry {
  type: string;
  /** order_events.actor. */
  actor: string | null;
  /** Read only where `actor` is null. */
  payload: Record<string, unknown> | null;
}

export function whoCaused(event: TimelineEntry): Actor {
  if (event.actor) return parseActor(event.actor);
  const payload = event.payload ?? {};
  const text = (key: string) => (typeof payload[key] === "string" ? (payload[key] as string) : undefined);
  const module = text("module");
  if (module) return { kind: "module", id: module };
  const veto = text("veto");
  if (event.type === "OrderCancelled" && veto) return { kind: "module", id: veto };
  if (event.type === "OrderStateChanged") {
    const to = text("to");
    if (to === "fulfilling" || to === "completed") return ordersModule;
  }
  // Rows written before callers were recorded: what their payload tells.
  const customerId = text("customerId");
  if (customerId && (event.type === "OrderPlaced" || (event.type === "OrderStateChanged" && !text("from"))))
    return { kind: "customer", id: customerId };
  const reportedBy = text("reportedBy");
  if (reportedBy) return { kind: "partner", id: reportedBy };
  return { kind: "unknown", id: "" };
}

function parseActor(tag: string): Actor {
  const colon = tag.indexOf(":");
  const kind = tag.slice(0, colon) as ActorKind;
  return colon > 0 && actorKinds.includes(kind)
    ? { kind, id: tag.slice(colon + 1) }
    : { kind: "unknown", id: tag };
}
