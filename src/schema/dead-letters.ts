import { and, desc, eq, inArray, isNull } from "drizzle-orm";
import { refuse } from "../errors.ts";
import type { BusEvent } from "../relay/bus.ts";
import { replayDeadLetter } from "../relay/dead-letters.ts";
import { deadLetters } from "../relay/tables.ts";
import { adminOnly } from "./auth.ts";
import type { Builder } from "./builder.ts";
import type { addOrders } from "./order.ts";

/** Waiting: neither replayed nor settled. */
const waiting = and(isNull(deadLetters.replayedAt), isNull(deadLetters.settledAt));

export function addDeadLetters(builder: Builder, { OrderRef }: ReturnType<typeof addOrders>): void {
  const DeadLetterRef = builder.objectRef<typeof deadLetters.$inferSelect>("DeadLetter").implement({
    description: "An event a listener gave up on after its bounded tries, with the last error.",
    fields: (t) => ({
      id: t.id({ resolve: (d) => String(d.id) }),
      consumer: t.exposeString("consumer", {
        description: "The listener: orders, finance, logistics, ..., notifier.",
      }),
      eventId: t.exposeID("eventId"),
      eventType: t.exposeString("eventType"),
      orderId: t.exposeID("orderId"),
      error: t.exposeString("error"),
      attempts: t.exposeInt("attempts", {
        description: "How many times the listener failed at it (redeliveries after restarts do not count).",
      }),
      failedAt: t.field({ type: "DateTime", resolve: (d) => d.failedAt }),
      replayedAt: t.field({ type: "DateTime", nullable: true, resolve: (d) => d.replayedAt }),
      settledAt: t.field({
        type: "DateTime",
        nullable: true,
        description: [
          "When the listener was done with the event after all: it handled it (replayed or redelivered),",
          "or failed at its replay again (a newer dead letter then waits). Null while it waits.",
        ].join(" "),
        resolve: (d) => d.settledAt,
      }),
    }),
  });

  builder.queryField("deadLetters", (t) =>
    t.field({
      type: [DeadLetterRef],
      description: "Admin. Newest first; by default only those waiting (neither replayed nor settled).",
      args: {
        consumer: t.arg.string(),
        includeReplayed: t.arg.boolean({
          defaultValue: false,
          description: "Also those replayed or settled.",
        }),
        first: t.arg.int({ defaultValue: 50 }),
      },
      authScopes: adminOnly,
      resolve: (_root, args, ctx) => {
        const first = args.first ?? 50;
        if (first < 1 || first > 500) refuse("BAD_USER_INPUT", "first must be between 1 and 500");
        return ctx.database.db
          .select()
          .from(deadLetters)
          .where(
            and(
              args.consumer ? eq(deadLetters.consumer, args.consumer) : undefined,
              args.includeReplayed ? undefined : waiting,
            ),
          )
          .orderBy(desc(deadLetters.id))
          .limit(first);
      },
    }),
  );

  builder.objectField(OrderRef, "deadLetters", (t) =>
    t.loadableGroup({
      type: DeadLetterRef,
      description: [
        "Admin. The order's events that a listener gave up on and is not done with yet (replayed ones",
        "included until their replay is handled): while there is one, a module's part of this order",
        "may be stuck. Oldest first.",
      ].join(" "),
      authScopes: adminOnly,
      loaderOptions: { cache: false },
      load: (orderIds: string[], ctx) =>
        ctx.database.db
          .select()
          .from(deadLetters)
          .where(and(inArray(deadLetters.orderId, orderIds), isNull(deadLetters.settledAt)))
          .orderBy(deadLetters.id),
      group: (letter) => letter.orderId,
      resolve: (order) => order.id,
    }),
  );

  builder.mutationField("replayDeadLetter", (t) =>
    t.field({
      type: DeadLetterRef,
      description: [
        "Admin. Publishes the event again, to the listeners that gave up on it only: every dead letter",
        "of that event not settled yet, whichever listener it is of, is marked replayed, and each is",
        "settled once its listener has handled the replay. Every other listener acknowledges it without",
        "work. A settled dead letter is INVALID_TRANSITION; a replayed one not settled yet (its replay",
        "was lost, or fails again) may be replayed again.",
      ].join(" "),
      args: { id: t.arg.id({ required: true }) },
      authScopes: adminOnly,
      resolve: async (_root, { id }, ctx) => {
        if (!/^\d{1,18}$/.test(id)) refuse("NOT_FOUND", "no such dead letter");
        // A refused publish throws, so the letters stay waiting rather than read as replayed.
        const publish = async (event: BusEvent) => {
          const [answer] = await ctx.bus.publish([event]);
          if (!answer?.ok) throw answer?.error ?? new Error("the bus did not answer the replay");
        };
        const replay = await replayDeadLetter(ctx.database.db, Number(id), publish);
        if (replay.kind === "not-found") return refuse("NOT_FOUND", "no such dead letter");
        if (replay.kind === "settled")
          return refuse(
            "INVALID_TRANSITION",
            "this dead letter is settled: its listener is done with the event",
          );
        const { event } = replay;
        ctx.logger.info(
          { eventId: event.id, orderId: event.orderId, consumers: event.replayFor, replay: event.replay },
          "dead letter replayed",
        );
        return replay.letter;
      },
    }),
  );
}
