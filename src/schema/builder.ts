import SchemaBuilder from "@pothos/core";
import DataloaderPlugin from "@pothos/plugin-dataloader";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import type { Database } from "../db/database.ts";
import type { OrderFeed } from "../feed/order-feed.ts";
import type { Logger } from "../log.ts";
import type { Bus } from "../relay/bus.ts";
import type { CommandDeps } from "../statemachine/commands.ts";
import type { ModuleDefinition } from "../statemachine/module.ts";
import { type AuthScopes, authScopesOf, type Caller, refusalOf } from "./auth.ts";

/** What every resolver gets: the caller and the services, nothing per-module. */
export interface Context {
  /** The caller the gateway verified the bearer token of; undefined without a valid token. */
  caller?: Caller;
  /** Why the bearer token was refused (expired, bad signature...); undefined with no token or a valid one. */
  tokenRefused?: string;
  database: Database;
  commands: CommandDeps;
  modules: readonly ModuleDefinition[];
  feed: OrderFeed;
  /** For what an admin publishes by hand (a dead-letter replay); everything else goes through the outbox. */
  bus: Bus;
  /** The SSE Last-Event-ID header: a browser's EventSource resumes with it as `after`. */
  lastEventId?: string;
  logger: Logger;
  /** STUCK_ORDER_AFTER_MS: when an open order counts as stuck (pipelineHealth). */
  stuckOrderAfterMs: number;
  /** The deduplication horizon (INBOX_RETENTION_HOURS): events older than this may be unknown to inboxes. */
  inboxRetentionMs: number;
}

/**
 * A builder of its own for each schema, so that two module lists make two
 * schemas in one process (the plug-in module test builds one with an extra
 * module beside the usual one).
 */
export function createBuilder() {
  const builder = new SchemaBuilder<{
    Context: Context;
    AuthScopes: AuthScopes;
    DefaultFieldNullability: false;
    DefaultEdgesNullability: { list: false; items: false };
    Scalars: {
      DateTime: { Input: Date; Output: Date };
      ID: { Input: string; Output: string };
    };
  }>({
    // Scope auth first, so that no other plugin's wrapper runs for a caller it refuses.
    plugins: [ScopeAuthPlugin, DataloaderPlugin, RelayPlugin],
    defaultFieldNullability: false,
    scopeAuth: {
      // A subscription is refused when it starts, not at its first event.
      authorizeOnSubscribe: true,
      authScopes: authScopesOf,
      unauthorizedError: (_parent, context, _info, result) => refusalOf(context, result.failure),
    },
    relay: {
      edgesFieldOptions: { nullable: { list: false, items: false } },
      // No Node interface: orders are fetched by their UUID with order(id).
      nodeQueryOptions: false,
      nodesQueryOptions: false,
    },
  });

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
  return builder;
}

export type Builder = ReturnType<typeof createBuilder>;
