import { readFileSync } from "node:fs";
import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * Trusted documents for first-party apps: only the operations in the
 * persisted-documents file that GraphQL Code Generator writes (hash →
 * document) run; a client sends the hash, never the text. Enforced on HTTP
 * (yoga's persisted-operations plugin) and on WebSocket (websocket.ts).
 */
export interface TrustedDocuments {
  lookup(extensions: Record<string, unknown> | undefined | null): string | undefined;
  refusal(): GraphQLError;
  plugin: Plugin;
}

export function loadTrustedDocuments(path: string): TrustedDocuments {
  const store = JSON.parse(readFileSync(path, "utf8")) as Record<string, string>;
  // Code Generator writes keys as "sha256:<hex>"; clients send either that or the bare hex.
  const find = (key: string): string | undefined => store[key] ?? store[`sha256:${key}`];
  const hashOf = (extensions: Record<string, unknown> | undefined | null): string | undefined => {
    const persisted = extensions?.persistedQuery as { sha256Hash?: unknown } | undefined;
    return typeof persisted?.sha256Hash === "string" ? persisted.sha256Hash : undefined;
  };
  return {
    lookup: (extensions) => {
      const hash = hashOf(extensions);
      return hash === undefined ? undefined : find(hash);
    },
    refusal: () =>
      new GraphQLError("only trusted documents run here: send extensions.persistedQuery.sha256Hash", {
        extensions: { code: "PERSISTED_QUERY_ONLY" },
      }),
    plugin: usePersistedOperations({
      getPersistedOperation: (key) => find(key) ?? null,
      allowArbitraryOperations: false,
    }) as Plugin,
  };
}
