import { randomUUID } from "node:crypto";
import type { Executor } from "../db/database.ts";
import { orderEvents } from "./tables.ts";

/** The channel the relay LISTENs on; a commit that wrote events NOTIFYs it (a trigger on order_events does). */
export const outboxChannel = "order_events";

export interface NewEvent {
  /** Given when the caller must know the id before the row exists (it stores it elsewhere too). */
  id?: string;
  type: string;
  orderId: string;
  payload: Record<string, unknown>;
}

export interface EnqueuedEvent extends NewEvent {
  id: string;
  occurredAt: Date;
}

/**
 * Writes events to the outbox inside the caller's transaction, so they exist
 * if and only if the state change that caused them commits.
 */
export async function enqueue(tx: Executor, events: NewEvent[]): Promise<EnqueuedEvent[]> {
  if (events.length === 0) return [];
  const occurredAt = new Date();
  const rows = events.map((e) => ({ ...e, id: e.id ?? randomUUID(), occurredAt }));
  // The table's trigger NOTIFYs the relay at commit.
  await tx.insert(orderEvents).values(rows);
  return rows;
}
