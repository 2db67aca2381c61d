/**
 * Orders this process placed or moved lately, as it wrote them, so that a
 * payment callback reaching the gateway that placed the order moves it
 * without reading it first. Only a decision to change the order is taken from
 * here, and its statement is guarded by the status read (see
 * transitionOrderAtOnce): when the order moved elsewhere meanwhile the guard
 * matches nothing and the command reads the order. An answer that changes
 * nothing (a replay, a refusal) is always taken from a fresh read.
 */
import type { ConfirmedLine } from "./events.ts";
import type { OrderRow } from "./tables.ts";

export interface RecentOrder {
  order: OrderRow;
  /** The lines as OrderConfirmed tells them to the modules (immutable once placed). */
  lines: ConfirmedLine[];
}

/** About a minute of orders at a few hundred a second, some megabytes; a miss only costs a read. */
const remembered = 20_000;

export class RecentOrders {
  private readonly byId = new Map<string, RecentOrder>();

  get(orderId: string): RecentOrder | undefined {
    return this.byId.get(orderId);
  }

  remember(recent: RecentOrder): void {
    this.byId.delete(recent.order.id);
    this.byId.set(recent.order.id, recent);
    if (this.byId.size > remembered) this.byId.delete(this.byId.keys().next().value!);
  }

  forget(orderId: string): void {
    this.byId.delete(orderId);
  }
}
