import { createServer, type Server } from "node:http";
import { useServer } from "graphql-ws/use/ws";
import { createYoga } from "graphql-yoga";
import { WebSocketServer } from "ws";
import type { Database } from "../db/database.ts";
import type { Logger } from "../log.ts";
import type { Bus } from "../relay/bus.ts";
import { authenticate } from "../schema/auth.ts";
import type { Context } from "../schema/builder.ts";
import { maskError } from "../schema/errors.ts";
import { schemaFor } from "../schema/index.ts";
import type { Metrics } from "./metrics.ts";
import { useRefuseNulCharacters } from "./refuse-nul.ts";
import { useSseEventIds } from "./sse-event-ids.ts";

export interface GatewayDeps extends Omit<Context, "auth"> {
  bus: Bus;
  jwtSecret: Uint8Array;
  metrics: Metrics;
  logger: Logger;
  database: Database;
}

/** One server, one port: GraphQL over HTTP and SSE (yoga), over WebSocket (graphql-ws), and the probes. */
export function createGateway(deps: GatewayDeps): { server: Server; close(): Promise<void> } {
  const { bus, jwtSecret, metrics, ...services } = deps;
  const yoga = createYoga<Record<string, unknown>, Context>({
    schema: schemaFor(deps.modules),
    graphqlEndpoint: "/graphql",
    landingPage: false,
    plugins: [useRefuseNulCharacters(), useSseEventIds()],
    logging: false,
    // isDev off everywhere: yoga would otherwise attach the original error (and its stack) outside production.
    maskedErrors: { maskError: maskError(deps.logger), isDev: false },
    context: async ({
      request,
      connectionParams,
    }: {
      request: Request;
      connectionParams?: Record<string, unknown>;
    }) => {
      const header = connectionParams ? connectionParams.authorization : request.headers.get("authorization");
      return {
        ...services,
        auth: await authenticate(typeof header === "string" ? header : undefined, jwtSecret),
        lastEventId: connectionParams ? undefined : (request.headers.get("last-event-id") ?? undefined),
      };
    },
  });

  const server = createServer(async (req, res) => {
    if (req.url === "/healthz") return void res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    if (req.url === "/readyz") {
      try {
        await Promise.all([deps.database.ping(), bus.ping()]);
        return void res.writeHead(200, { "content-type": "text/plain" }).end("ready\n");
      } catch (error) {
        return void res.writeHead(503, { "content-type": "text/plain" }).end(`not ready: ${String(error)}\n`);
      }
    }
    if (req.url === "/metrics") {
      return void res.writeHead(200, { "content-type": metrics.contentType }).end(await metrics.render());
    }
    return yoga(req, res);
  });

  const sockets = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const graphqlWs = useServer(
    {
      execute: (args) => (args.rootValue as { execute: (a: unknown) => unknown }).execute(args) as never,
      subscribe: (args) =>
        (args.rootValue as { subscribe: (a: unknown) => unknown }).subscribe(args) as never,
      // A token that is present but refused ends the connection (4403); no token may still read products.
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        if (authorization === undefined) return true;
        const auth = await authenticate(typeof authorization === "string" ? authorization : "", jwtSecret);
        return auth.kind === "caller";
      },
      onSubscribe: async (ctx, _id, params) => {
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          connectionParams: ctx.connectionParams ?? {},
        });
        const args = {
          schema: enveloped.schema,
          operationName: params.operationName,
          document: enveloped.parse(params.query),
          variableValues: params.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
        const errors = enveloped.validate(args.schema, args.document);
        if (errors.length > 0) return errors;
        return args;
      },
    },
    sockets,
  );

  return {
    server,
    async close() {
      await graphqlWs.dispose();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
