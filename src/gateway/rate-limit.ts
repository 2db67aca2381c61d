import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { RateLimiterMemory } from "rate-limiter-flexible";
import type { Context } from "../schema/builder.ts";

/**
 * Operations per caller per minute (the token's subject, or the client's
 * address without a token), on HTTP and WebSocket alike. In memory, so per
 * process: with several gateways behind a balancer the limit is per gateway.
 */
export function useRateLimit(perMinute: number): Plugin<Context & { clientKey?: string }> {
  const limiter = new RateLimiterMemory({ points: perMinute, duration: 60 });
  const check = async (context: Context & { clientKey?: string }) => {
    const key = context.caller ? `caller:${context.caller.id}` : `ip:${context.clientKey ?? "?"}`;
    try {
      await limiter.consume(key);
      return undefined;
    } catch {
      return {
        errors: [new GraphQLError("too many requests: slow down", { extensions: { code: "RATE_LIMITED" } })],
      };
    }
  };
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const refused = await check(args.contextValue);
      if (refused) setResultAndStopExecution(refused);
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const refused = await check(args.contextValue);
      if (refused) setResultAndStopExecution(refused);
    },
  };
}
