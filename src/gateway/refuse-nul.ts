import { type DocumentNode, GraphQLError, Kind, visit } from "graphql";
import type { Plugin } from "graphql-yoga";

/**
 * PostgreSQL text cannot hold a NUL character: refuse it in any string input
 * (variables or literals) as BAD_USER_INPUT before a resolver runs, instead of
 * letting the database fail with an internal error. Runs on execute and
 * subscribe, so HTTP and WebSocket alike.
 */
export function useRefuseNulCharacters(): Plugin {
  const refusal = () => ({
    errors: [
      new GraphQLError("text inputs must not contain NUL characters", {
        extensions: { code: "BAD_USER_INPUT" },
      }),
    ],
  });
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (hasNul(args.variableValues) || documentHasNul(args.document)) setResultAndStopExecution(refusal());
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      if (hasNul(args.variableValues) || documentHasNul(args.document)) setResultAndStopExecution(refusal());
    },
  };
}

/** Walks with a stack of its own: a variable nested ten thousand deep must not overflow the call stack. */
function hasNul(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === "string") {
      if (value.includes("\u0000")) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value !== null && typeof value === "object") {
      for (const item of Object.values(value)) pending.push(item);
    }
  }
  return false;
}

/**
 * Per document: yoga's parser cache hands the same DocumentNode to every
 * request with the same text, so a hot query is walked once, not per request.
 */
const nulInDocument = new WeakMap<DocumentNode, boolean>();

function documentHasNul(document: DocumentNode): boolean {
  let found = nulInDocument.get(document);
  if (found === undefined) {
    found = walkForNul(document);
    nulInDocument.set(document, found);
  }
  return found;
}

function walkForNul(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    [Kind.STRING]: (node) => {
      if (node.value.includes("\u0000")) found = true;
    },
  });
  return found;
}
