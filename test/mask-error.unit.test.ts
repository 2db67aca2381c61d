import { GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";
import type { Logger } from "../src/log.ts";
import { maskError } from "../src/schema/errors.ts";

describe("the error mask", () => {
  it("answers an unexpected error as INTERNAL_SERVER_ERROR, and logs it with the database's own message", () => {
    const logged: { fields: Record<string, unknown>; message: string }[] = [];
    const logger = {
      error: (fields: Record<string, unknown>, message: string) => logged.push({ fields, message }),
    } as unknown as Logger;
    // As drizzle wraps what pg rejected with: the SQL in the message, the reason in the cause.
    const failed = new Error("Failed query: update sales_orders set …", {
      cause: new Error("timeout exceeded when trying to connect"),
    });

    const masked = maskError(logger)(
      new GraphQLError("boom", { originalError: failed }),
      "Unexpected error.",
    );

    expect(masked).toBeInstanceOf(GraphQLError);
    expect((masked as GraphQLError).extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(masked.message).toBe("Unexpected error.");
    expect(logged).toHaveLength(1);
    expect(logged[0]!.message).toBe("unexpected error");
    expect(logged[0]!.fields.cause).toBe("Error: timeout exceeded when trying to connect");
  });
});
