import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { refuse } from "../errors.ts";
import { outboxChannel } from "../relay/outbox.ts";
import { deadLetters, orderEvents } from "../relay/tables.ts";
import { requireRole } from "./auth.ts";
import { builder } from "./builder.ts";

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
    attempts: t.exposeInt("attempts"),
    failedAt: t.field({ type: "DateTime", resolve: (d) => d.failedAt }),
    replayedAt: t.field({ type: "DateTime", nullable: true, resolve: (d) => d.replayedAt }),
  }),
});

builder.queryField("deadLetters", (t) =>
  t.field({
    type: [DeadLetterRef],
    description: "Admin. Newest first; by default only those not replayed yet.",
    args: {
      consumer: t.arg.string(),
      includeReplayed: t.arg.boolean({ defaultValue: false }),
      first: t.arg.int({ defaultValue: 50 }),
    },
    resolve: (_root, args, ctx) => {
      requireRole(ctx.auth, "admin");
      const first = args.first ?? 50;
      if (first < 1 || first > 500) refuse("BAD_USER_INPUT", "first must be between 1 and 500");
      return ctx.database.db
        .select()
        .from(deadLetters)
        .where(
          and(
            args.consumer ? eq(deadLetters.consumer, args.consumer) : undefined,
            args.includeReplayed ? undefined : isNull(deadLetters.replayedAt),
          ),
        )
        .orderBy(desc(deadLetters.id))
        .limit(first);
    },
  }),
);

builder.mutationField("replayDeadLetter", (t) =>
  t.field({
    type: DeadLetterRef,
    description: [
      "Admin. Publishes the event again, under the same event id: the listener that gave up handles it",
      "(its inbox has no row for it); every other listener finds its inbox row and does nothing.",
    ].join(" "),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      requireRole(ctx.auth, "admin");
      if (!/^\d{1,18}$/.test(id)) refuse("NOT_FOUND", "no such dead letter");
      return ctx.database.db.transaction(async (tx) => {
        const [letter] = await tx
          .select()
          .from(deadLetters)
          .where(eq(deadLetters.id, Number(id)))
          .for("update");
        if (!letter) return refuse("NOT_FOUND", "no such dead letter");
        if (letter.replayedAt) refuse("INVALID_TRANSITION", "this dead letter was replayed already");
        const [replayed] = await tx
          .update(deadLetters)
          .set({ replayedAt: new Date() })
          .where(eq(deadLetters.id, letter.id))
          .returning();
        await tx
          .update(orderEvents)
          .set({ publishedAt: null, replays: sql`${orderEvents.replays} + 1` })
          .where(eq(orderEvents.id, letter.eventId));
        await tx.execute(sql`select pg_notify(${outboxChannel}, '')`);
        return replayed!;
      });
    },
  }),
);
