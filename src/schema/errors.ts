import { GraphQLError } from "graphql";
import { describeError, RefusedError } from "../errors.ts";
import type { Logger } from "../log.ts";

/**
 * Yoga's error mask: a refusal keeps its message and its contract code, the
 * GraphQL engine's own errors pass as they are, anything else is logged here
 * and leaves as INTERNAL_SERVER_ERROR with no stack, no SQL.
 */
export function maskError(logger: Logger) {
  return (error: unknown, message: string): Error => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    if (original instanceof RefusedError) {
      return new GraphQLError(original.message, {
        ...(error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {}),
        extensions: { code: original.code },
      });
    }
    if (error instanceof GraphQLError && !error.originalError) return error;
    if (original instanceof GraphQLError && original.extensions?.code) return original;
    // graphql-js's own refusals (a variable of the wrong type) wrap a GraphQLError: the client's input, not our fault.
    if (original instanceof GraphQLError) {
      return new GraphQLError(original.message, {
        ...(error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {}),
        extensions: { code: "BAD_USER_INPUT", http: { spec: true, status: 400 } },
      });
    }
    logger.error(
      {
        err: original instanceof Error ? original.stack : String(original),
        // The query builder wraps the database's own message (a timeout, a lost connection): the one to act on.
        ...(original instanceof Error && original.cause !== undefined
          ? { cause: describeError(original.cause) }
          : {}),
      },
      "unexpected error",
    );
    return new GraphQLError(message, {
      ...(error instanceof GraphQLError ? { path: error.path } : {}),
      extensions: { code: "INTERNAL_SERVER_ERROR" },
    });
  };
}
