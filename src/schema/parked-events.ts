import { refuse } from "../errors.ts";
import { parkedEvents, unpark } from "../relay/relay.ts";
import type { OrderEventRow } from "../relay/tables.ts";
import { adminOnly } from "./auth.ts";
import type { Builder } from "./builder.ts";

export function addParkedEvents(builder: Builder): void {
  const ParkedEventRef = builder.objectRef<OrderEventRow>("ParkedEvent").implement({
    description: [
      "An outbox event the bus refused for good (larger than the stream allows, say). The relay holds it,",
      "and the later events of its order, until an admin republishes it.",
    ].join(" "),
    fields: (t) => ({
      id: t.exposeID("id", { description: "The event id." }),
      type: t.exposeString("type"),
      orderId: t.exposeID("orderId"),
      occurredAt: t.field({ type: "DateTime", resolve: (e) => e.occurredAt }),
      parkedAt: t.field({ type: "DateTime", resolve: (e) => e.parkedAt! }),
      error: t.string({ description: "The bus's refusal.", resolve: (e) => e.parkError ?? "" }),
      /** A size limit is the usual cause: the admin compares it with the stream's. */
      payloadBytes: t.int({ resolve: (e) => Buffer.byteLength(JSON.stringify(e.payload)) }),
    }),
  });

  builder.queryField("parkedEvents", (t) =>
    t.field({
      type: [ParkedEventRef],
      description: "Admin. Events the relay parked, oldest first.",
      args: { first: t.arg.int({ defaultValue: 50 }) },
      authScopes: adminOnly,
      resolve: (_root, args, ctx) => {
        const first = args.first ?? 50;
        if (first < 1 || first > 500) refuse("BAD_USER_INPUT", "first must be between 1 and 500");
        return parkedEvents(ctx.database.db, first);
      },
    }),
  );

  builder.mutationField("republishParkedEvent", (t) =>
    t.field({
      type: "ID",
      description: [
        "Admin. Unparks the event once its cause is fixed: the relay publishes it again, then the events",
        "of its order that waited behind it. Answers the event id.",
      ].join(" "),
      args: { id: t.arg.id({ required: true }) },
      authScopes: adminOnly,
      resolve: async (_root, { id }, ctx) => {
        const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
        if (!uuid.test(id)) refuse("NOT_FOUND", "no such parked event");
        const [row] = await unpark(ctx.database.db, [id]);
        if (!row) return refuse("NOT_FOUND", "no such parked event");
        return row.id;
      },
    }),
  );
}
