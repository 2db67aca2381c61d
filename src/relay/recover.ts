import { and, eq, gte, inArray, isNotNull, notExists, sql } from "drizzle-orm";
import type { Db } from "../db/database.ts";
import type { Listener } from "./listener.ts";
import { deadLetters, orderEvents, processedEvents } from "./tables.ts";

/**
 * The in-process bus keeps nothing across a restart: an event it had taken but
 * a listener had not handled yet would be lost. Before such a bus starts,
 * every published event that a listener of this process handles, and has
 * neither in its inbox nor in dead_letters, is marked unpublished again; the
 * relay hands it to the new bus, and listeners that had handled it find their
 * inbox row and do nothing. Returns how many events it marked.
 *
 * Only events since `horizon` (the inbox retention): older inbox rows may
 * have been swept, and their events were handled long ago.
 */
export async function republishUnhandled(
  db: Db,
  listeners: readonly Listener[],
  horizon?: Date,
): Promise<number> {
  const types = (await db.selectDistinct({ type: orderEvents.type }).from(orderEvents)).map((r) => r.type);
  let marked = 0;
  for (const listener of listeners) {
    const handled = types.filter((t) => listener.types.includes(t));
    if (handled.length === 0) continue;
    const inInbox = db
      .select({ one: sql`1` })
      .from(processedEvents)
      .where(and(eq(processedEvents.consumer, listener.name), eq(processedEvents.eventId, orderEvents.id)));
    const dead = db
      .select({ one: sql`1` })
      .from(deadLetters)
      .where(and(eq(deadLetters.consumer, listener.name), eq(deadLetters.eventId, orderEvents.id)));
    const rows = await db
      .update(orderEvents)
      // Marked as a replay: live subscribers may have seen these changes before the restart.
      .set({ publishedAt: null, replays: sql`${orderEvents.replays} + 1` })
      .where(
        and(
          isNotNull(orderEvents.publishedAt),
          horizon ? gte(orderEvents.occurredAt, horizon) : undefined,
          inArray(orderEvents.type, handled),
          notExists(inInbox),
          notExists(dead),
        ),
      )
      .returning({ id: orderEvents.id });
    marked += rows.length;
  }
  return marked;
}
