import type { IncomingMessage, ServerResponse } from "node:http";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { Plugin } from "graphql-yoga";
import type { GatewayOptions } from "./options.ts";

/**
 * Depth, aliases, tokens and cost, refused before anything runs. They are
 * validation rules and a parser limit, so they hold on WebSocket as on HTTP:
 * both run the same envelop parse and validate.
 */
export function useOperationLimits(options: GatewayOptions): Plugin {
  return EnvelopArmorPlugin({
    maxDepth: { n: options.maxDepth, ignoreIntrospection: true },
    maxAliases: { n: options.maxAliases },
    maxTokens: { n: options.maxTokens },
    costLimit: { maxCost: options.maxCost, ignoreIntrospection: true },
    maxDirectives: { n: 20 },
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
