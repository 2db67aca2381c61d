import { type OrderStatus, orderStatuses } from "../statemachine/states.ts";

/**
 * The last shared state handed on for each of the most recently changed
 * orders. An order's shared states never repeat and only move forward (the
 * order of `orderStatuses`), so a change that is not past its order's last
 * state was handed on already: the stream may hold an event twice (a relay
 * that published a batch again after JetStream's duplicate window). Bounded:
 * the order changed longest ago is forgotten first.
 */
export class OrderVersions {
  private readonly last = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  /** Whether the order is remembered. */
  has(orderId: string): boolean {
    return this.last.has(orderId);
  }

  /** Records that the order reached `to`. False, and nothing recorded, when it had reached it already. */
  advance(orderId: string, to: OrderStatus): boolean {
    const rank = orderStatuses.indexOf(to);
    const known = this.last.get(orderId);
    if (known !== undefined && known >= rank) return false;
    // Deleted first, so the Map's insertion order is the order of use: its first key is the oldest.
    this.last.delete(orderId);
    this.last.set(orderId, rank);
    if (this.last.size > this.capacity) this.last.delete(this.last.keys().next().value!);
    return true;
  }
}
