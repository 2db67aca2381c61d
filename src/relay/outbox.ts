import { randomUUID } from "node:crypto";
import { type SQL, sql } from "drizzle-orm";
import { type Executor, queryAtCommit } from "../db/database.ts";
import { orderEvents } from "./tables.ts";

/** The channel the relay LISTENs on; a commit that wrote events NOTIFYs it (a trigger on order_events does). */
export const outboxChannel = "order_events";

export interface NewEvent {
  /** Given when the caller must know the id before the row exists (it stores it elsewhere too). */
  id?: string;
  type: string;
  orderId: string;
  payload: Record<string, unknown>;
  /** Who caused it (`role:id`), when a caller did; see order_events.actor. */
  actor?: string;
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
  const { insert, enqueued } = outboxInsert(events);
  // Named: one text whatever the events, parsed once per connection; its answer unread, so it may go
  // with the commit.
  await queryAtCommit(tx, insert);
  return enqueued;
}

/**
 * The events with their ids and time, and the INSERT that writes them: for
 * enqueue, or for a caller that writes them in the same statement as the
 * state change (a data-modifying CTE), `onlyIf` that change happened.
 */
export function outboxInsert(events: NewEvent[], onlyIf?: SQL): { insert: SQL; enqueued: EnqueuedEvent[] } {
  const occurredAt = new Date();
  const enqueued = events.map((e) => ({ ...e, id: e.id ?? randomUUID(), occurredAt }));
  // One JSON parameter, whatever the number of events: cheap to build and to parse. In the given order,
  // so seq (the outbox order) follows it. The table's trigger NOTIFYs the relay at commit.
  const json = JSON.stringify(
    enqueued.map((e) => ({
      id: e.id,
      order_id: e.orderId,
      type: e.type,
      payload: e.payload,
      occurred_at: occurredAt,
      actor: e.actor ?? null,
    })),
  );
  const insert = sql`
    insert into ${orderEvents} (id, order_id, type, payload, occurred_at, actor)
    select id, order_id, type, payload, occurred_at, actor
    from rows from (
      jsonb_to_recordset(${json}::jsonb)
        as (id uuid, order_id uuid, type text, payload jsonb, occurred_at timestamptz, actor text)
    ) with ordinality as e(id, order_id, type, payload, occurred_at, actor, n)
    ${onlyIf ? sql`where ${onlyIf}` : sql``}
    order by n`;
  return { insert, enqueued };
}
