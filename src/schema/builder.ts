import SchemaBuilder from "@pothos/core";
import type { Database } from "../db/database.ts";
import type { OrderFeed } from "../feed/order-feed.ts";
import type { Logger } from "../log.ts";
import type { Bus } from "../relay/bus.ts";
import type { CommandDeps } from "../statemachine/commands.ts";
import type { ModuleDefinition } from "../statemachine/module.ts";
import type { Authentication } from "./auth.ts";

/** What every resolver gets: the caller and the services, nothing per-module. */
export interface Context {
  auth: Authentication;
  database: Database;
  commands: CommandDeps;
  modules: readonly ModuleDefinition[];
  feed: OrderFeed;
  /** For what an admin publishes by hand (a dead-letter replay); everything else goes through the outbox. */
  bus: Bus;
  /** The SSE Last-Event-ID header: a browser's EventSource resumes with it as `after`. */
  lastEventId?: string;
  logger: Logger;
}

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    ID: { Input: string; Output: string };
  };
}>({ defaultFieldNullability: false });

builder.scalarType("DateTime", {
  description: "An instant, as an ISO 8601 string in UTC.",
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new TypeError("DateTime must be an ISO 8601 string");
    return date;
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
