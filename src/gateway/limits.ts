import type { IncomingMessage, ServerResponse } from "node:http";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { GatewayOptions } from "./options.ts";

/**
 * Depth, aliases, tokens and cost, refused before anything runs. They are
 * validation rules and a parser limit, so they hold on WebSocket as on HTTP:
 * both run the same envelop parse and validate.
 */
export function useOperationLimits(options: GatewayOptions): Plugin {
  // A refusal is the client's request at fault: BAD_USER_INPUT, and 400 where the client asked for
  // application/graphql-response+json (yoga keeps 200 for application/json, as the specification says).
  const onReject = [
    (_ctx: unknown, error: GraphQLError) => {
      Object.assign(error.extensions, { code: "BAD_USER_INPUT", http: { spec: true, status: 400 } });
    },
  ];
  return EnvelopArmorPlugin({
    maxDepth: { n: options.maxDepth, ignoreIntrospection: true, onReject },
    maxAliases: { n: options.maxAliases, onReject },
    maxTokens: { n: options.maxTokens, onReject },
    costLimit: { maxCost: options.maxCost, ignoreIntrospection: true, onReject },
    maxDirectives: { n: 20, onReject },
    blockFieldSuggestion: { enabled: !options.introspection },
  }) as Plugin;
}

/**
 * Refuses a body over the limit with 413: at once from Content-Length, or as
 * soon as a chunked body has sent too much. Returns true when it answered.
 */
export function refuseLargeBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): boolean {
  const tooLarge = () => {
    if (!res.headersSent) {
      res.writeHead(413, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ errors: [{ message: `request body over ${maxBytes} bytes` }] }));
    }
  };
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > maxBytes) {
    tooLarge();
    req.resume();
    return true;
  }
  let received = 0;
  req.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBytes) {
      tooLarge();
      req.destroy();
    }
  });
  return false;
}
