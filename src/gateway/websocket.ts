import type { Server } from "node:http";
import { GraphQLError } from "graphql";
import { CloseCode } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import type { YogaServerInstance } from "graphql-yoga";
import { WebSocketServer } from "ws";
import type { GatewayOptions } from "./options.ts";
import { authenticate, type TokenVerifier } from "./tokens.ts";
import type { TrustedDocuments } from "./trusted-documents.ts";

/**
 * GraphQL over WebSocket (graphql-transport-ws) on the HTTP server's path,
 * through yoga's envelop: the same parse, validation rules, limits and
 * context as HTTP. The token is checked at connection_init and again on each
 * subscribe; a token that has expired since closes the socket with 4403.
 */
export function serveWebSocket(
  server: Server,
  // biome-ignore lint/suspicious/noExplicitAny: yoga's server and user contexts vary by caller
  yoga: YogaServerInstance<any, any>,
  options: GatewayOptions,
  verify: TokenVerifier,
  trusted: TrustedDocuments | undefined,
) {
  const sockets = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: options.maxBodyBytes,
  });
  const connections = new Map<string, number>();
  const callerOf = new WeakMap<object, string>();

  const graphqlWs = useServer(
    {
      execute: (args) => (args.rootValue as { execute: (a: unknown) => unknown }).execute(args) as never,
      subscribe: (args) =>
        (args.rootValue as { subscribe: (a: unknown) => unknown }).subscribe(args) as never,
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        if (authorization !== undefined && typeof authorization !== "string") return false;
        const auth =
          authorization === undefined
            ? ({ kind: "anonymous" } as const)
            : await authenticate(authorization, verify);
        // A token that is present but refused ends the connection (4403); no token may still read products.
        if (auth.kind === "invalid") return false;
        const key = auth.kind === "caller" ? auth.caller.id : `ip:${ctx.extra.request.socket.remoteAddress}`;
        const held = connections.get(key) ?? 0;
        if (held >= options.maxConnectionsPerCaller) {
          ctx.extra.socket.close(
            CloseCode.TooManyInitialisationRequests,
            "Too many connections for this caller",
          );
          return false;
        }
        connections.set(key, held + 1);
        callerOf.set(ctx.extra.socket, key);
        return true;
      },
      onClose: (ctx) => {
        const key = callerOf.get(ctx.extra.socket);
        if (key === undefined) return;
        const left = (connections.get(key) ?? 1) - 1;
        if (left > 0) connections.set(key, left);
        else connections.delete(key);
      },
      onSubscribe: async (ctx, _id, params) => {
        let query = params.query;
        if (trusted) {
          const found = trusted.lookup(params.extensions);
          if (!found) return [trusted.refusal()];
          query = found;
        }
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          connectionParams: ctx.connectionParams ?? {},
          clientKey: ctx.extra.request.socket.remoteAddress,
        });
        // The limits throw from parse and from validation alike: either way the client gets an error message.
        let document: ReturnType<typeof enveloped.parse>;
        try {
          document = enveloped.parse(query);
          const errors = enveloped.validate(enveloped.schema, document);
          if (errors.length > 0) return errors;
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
        }
        const contextValue = await enveloped.contextFactory();
        if (contextValue.tokenRefused !== undefined) {
          ctx.extra.socket.close(CloseCode.Forbidden, "Forbidden: the token is no longer valid");
          return [
            new GraphQLError("the token is no longer valid", { extensions: { code: "UNAUTHENTICATED" } }),
          ];
        }
        return {
          schema: enveloped.schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue,
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
      },
    },
    sockets,
  );

  return {
    async close() {
      await graphqlWs.dispose();
      await new Promise<void>((resolve) => sockets.close(() => resolve()));
    },
  };
}
