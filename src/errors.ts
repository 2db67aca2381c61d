/** The error codes of CONTRACT.md; every refused operation answers one of them and changes nothing. */
export const errorCodes = [
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "NOT_FOUND",
  "BAD_USER_INPUT",
  "INVALID_TRANSITION",
  "CONFLICT",
  "RATE_LIMITED",
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/** A refusal the caller can act on; its message is shown to the client. */
export class RefusedError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "RefusedError";
  }
}

export const refuse = (code: ErrorCode, message: string): never => {
  throw new RefusedError(code, message);
};

/** The error and its causes: the query builder wraps the database's own message, the one an operator needs. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const text = `${error.name}: ${error.message}`;
  return error.cause === undefined ? text : `${text}; cause: ${describeError(error.cause)}`;
}
