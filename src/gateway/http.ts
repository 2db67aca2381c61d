import { createServer, type Server } from "node:http";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import { createYoga } from "graphql-yoga";
import type { Database } from "../db/database.ts";
import type { Logger } from "../log.ts";
import type { Bus } from "../relay/bus.ts";
import type { Context } from "../schema/builder.ts";
import { maskError } from "../schema/errors.ts";
import { schemaFor } from "../schema/index.ts";
import { serveConsole } from "./console.ts";
import { setSecurityHeaders } from "./headers.ts";
import { useNoIntrospection } from "./introspection.ts";
import { refuseLargeBody, useOperationLimits } from "./limits.ts";
import type { Metrics } from "./metrics.ts";
import type { GatewayOptions } from "./options.ts";
import { answerProbe } from "./probes.ts";
import { useRateLimit } from "./rate-limit.ts";
import { useRefuseNulCharacters } from "./refuse-nul.ts";
import { useSseEventIds } from "./sse-event-ids.ts";
import { authenticate, callerFields, type TokenVerifier } from "./tokens.ts";
import { loadTrustedDocuments } from "./trusted-documents.ts";
import { serveWebSocket } from "./websocket.ts";

export interface GatewayDeps extends Omit<Context, "caller" | "tokenRefused"> {
  bus: Bus;
  verify: TokenVerifier;
  options: GatewayOptions;
  metrics: Metrics;
  logger: Logger;
  database: Database;
}

/** One server, one port: GraphQL over HTTP and SSE (yoga), over WebSocket (graphql-ws), and the probes. */
/** How long the requests in flight at shutdown may take to answer before their connections are closed. */
const requestGraceMs = 2_000;

export function createGateway(deps: GatewayDeps): { server: Server; close(): Promise<void> } {
  const { verify, metrics, options, ...services } = deps;
  const { bus } = deps;
  const trusted = options.trustedDocuments ? loadTrustedDocuments(options.trustedDocuments) : undefined;
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema: schemaFor(deps.modules),
    graphqlEndpoint: "/graphql",
    landingPage: false,
    logging: false,
    // refuseLargeBody() below enforces the contract's limit on the socket; yoga's own (25 MB) would pipe
    // every body through a TransformStream, an AbortController and a DOMException a request (~4% of a
    // trivial request's CPU), and Node's parser already refuses a malformed Content-Length.
    maxRequestBodySize: false,
    cors: options.corsOrigins === "*" ? { origin: "*" } : { origin: options.corsOrigins },
    // isDev off everywhere: yoga would otherwise attach the original error (and its stack) outside production.
    maskedErrors: { maskError: maskError(deps.logger), isDev: false },
    plugins: [
      ...(trusted ? [trusted.plugin] : []),
      ...(options.introspection ? [] : [useNoIntrospection()]),
      ...(options.csrfPrevention
        ? [useCSRFPrevention({ requestHeaders: ["authorization", "x-graphql-csrf"] })]
        : []),
      useOperationLimits(options),
      useRateLimit(options.rateLimitPerMinute),
      useRefuseNulCharacters(),
      useSseEventIds(),
    ],
    context: async ({
      request,
      connectionParams,
      clientKey,
    }: {
      request: Request;
      connectionParams?: Record<string, unknown>;
      clientKey?: string;
    }) => {
      const header = connectionParams ? connectionParams.authorization : request.headers.get("authorization");
      return {
        ...services,
        ...callerFields(await authenticate(typeof header === "string" ? header : undefined, verify)),
        lastEventId: connectionParams ? undefined : (request.headers.get("last-event-id") ?? undefined),
        // The peer's address keys the rate limit of anonymous callers (X-Forwarded-For is not trusted: it is the caller's to write).
        clientKey,
      };
    },
  });

  const server = createServer(async (req, res) => {
    setSecurityHeaders(res);
    if (await serveConsole(req, res)) return;
    if (await answerProbe(req, res, { database: deps.database, bus, metrics })) return;
    if (refuseLargeBody(req, res, options.maxBodyBytes)) return;
    return yoga(req, res, { clientKey: req.socket.remoteAddress });
  });

  const websocket = serveWebSocket(server, yoga, options, verify, trusted);

  return {
    server,
    async close() {
      // No new connection, and none kept alive; the requests in flight (a mutation) get a moment to answer.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await websocket.close();
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, requestGraceMs).unref())]);
      // What is left is long-lived (SSE subscriptions, which resume with Last-Event-ID) or stuck.
      server.closeAllConnections();
      await closed;
    },
  };
}
