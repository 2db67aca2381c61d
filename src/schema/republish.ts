import { refuse } from "../errors.ts";
import { refuseRange, republishRange } from "../relay/republish.ts";
import { adminOnly } from "./auth.ts";
import type { Builder } from "./builder.ts";

export function addRepublish(builder: Builder): void {
  builder.mutationField("republishEvents", (t) =>
    t.field({
      type: "Int",
      description: [
        "Admin. Publishes again the outbox events that occurred from `from` (inclusive) to `to` (exclusive),",
        "after the broker lost them: listeners that had them find them in their inbox and do nothing, the",
        "others handle them once; subscribers are not sent them again. Answers how many events the relay",
        "publishes again. A range reaching past the deduplication horizon (INBOX_RETENTION_HOURS) is",
        "BAD_USER_INPUT.",
      ].join(" "),
      args: {
        from: t.arg({ type: "DateTime", required: true }),
        to: t.arg({ type: "DateTime", required: true }),
      },
      authScopes: adminOnly,
      resolve: async (_root, { from, to }, ctx) => {
        const refused = refuseRange({ from, to }, ctx.inboxRetentionMs);
        if (refused) refuse("BAD_USER_INPUT", refused);
        const events = await republishRange(ctx.database.db, { from, to });
        ctx.logger.warn(
          { from: from.toISOString(), to: to.toISOString(), events, admin: ctx.caller?.id },
          "republishing the outbox events of a range",
        );
        return events;
      },
    }),
  );
}
