import { NoSchemaIntrospectionCustomRule } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * Introspection off (the production default). A validation rule, so it holds
 * for WebSocket operations too: yoga's own plugin keys on the HTTP request,
 * which a WebSocket operation does not have.
 */
export function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}
