import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { print } from "graphql";
import { type Client, createClient } from "graphql-ws";
import { afterAll, beforeAll } from "vitest";
import WebSocket from "ws";
import { readConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import type { Listener, RetryPolicy } from "../../src/relay/listener.ts";
import type { Caller } from "../../src/schema/auth.ts";
import { type Service, startService } from "../../src/server.ts";
import type { ModuleDefinition } from "../../src/statemachine/module.ts";
import { secretKey, signToken } from "../../src/tokens.ts";
import { createTestDatabase, testPrefix } from "./database.ts";

export const testSecret = secretKey("test-secret-not-for-production");

export interface TestServiceOptions {
  databaseUrl: string;
  /** Omit for the in-process bus (then every role runs here). */
  natsPrefix?: string;
  roles?: string;
  env?: Record<string, string>;
  modules?: readonly ModuleDefinition[];
  retry?: RetryPolicy;
  listeners?: Listener[];
}

/** A real service (PostgreSQL, JetStream) on a free port, with helpers to call it. */
export async function startTestService(options: TestServiceOptions) {
  const config = readConfig({
    PORT: "0",
    DATABASE_URL: options.databaseUrl,
    ...(options.natsPrefix
      ? { NATS_URL: process.env.NATS_URL ?? "nats://127.0.0.1:4222", NATS_PREFIX: options.natsPrefix }
      : {}),
    ROLES: options.roles ?? "all",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    // Its own folder, so each service's .eml files (no SMTP_URL) stay apart and go with the temp dir.
    DATA_DIR: mkdtempSync(join(tmpdir(), "order-gateway-")),
    ...options.env,
  });
  const service: Service = await startService({
    config,
    logger: createLogger(config.logLevel),
    jwtSecret: testSecret,
    modules: options.modules,
    retry: options.retry,
    listeners: options.listeners,
  });
  const url = service.port === undefined ? undefined : `http://127.0.0.1:${service.port}/graphql`;
  return { service, url, stop: () => service.stop() };
}

export type TestService = Awaited<ReturnType<typeof startTestService>>;

export function tokenFor(
  caller: Partial<Caller> & Pick<Caller, "role">,
  expiresIn?: string,
): Promise<string> {
  return signToken(
    testSecret,
    { id: caller.id ?? `${caller.role}-1`, scopes: caller.scopes ?? [], role: caller.role },
    expiresIn,
  );
}

export const tokens = {
  customer: () => tokenFor({ role: "customer", id: "customer-1" }),
  otherCustomer: () => tokenFor({ role: "customer", id: "customer-2" }),
  payments: () => tokenFor({ role: "partner", id: "psp", scopes: ["payments"] }),
  logistics: () => tokenFor({ role: "partner", id: "carrier", scopes: ["logistics"] }),
  travelium: () => tokenFor({ role: "partner", id: "travel", scopes: ["travelium"] }),
  admin: () => tokenFor({ role: "admin", id: "admin" }),
};

export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** POSTs a typed document; returns the whole response (data and errors). */
export async function gql<TResult, TVariables>(
  url: string,
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  token?: string,
): Promise<GraphQLResponse<TResult>> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: print(document), variables }),
  });
  return (await response.json()) as GraphQLResponse<TResult>;
}

/** Data, or a thrown error naming the GraphQL errors. */
export async function gqlData<TResult, TVariables>(
  url: string,
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  token?: string,
): Promise<TResult> {
  const result = await gql(url, document, variables, token);
  if (result.errors?.length || !result.data)
    throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data;
}

export function errorCode(result: GraphQLResponse<unknown>): string | undefined {
  return result.errors?.[0]?.extensions?.code;
}

export function wsClient(url: string, token?: string): Client {
  return createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

/** Deletes the JetStream stream (and so its consumers) of a test prefix. */
export async function deleteStream(prefix: string): Promise<void> {
  const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`${prefix}_events`).catch(() => {});
  } finally {
    await nc.close();
  }
}

/** Waits until the gateway serves at least `n` live subscriptions: a subscribe has no acknowledgement of its own. */
export async function liveSubscriptions(url: string, n = 1): Promise<void> {
  const { eventually } = await import("./wait.ts");
  await eventually(
    async () => {
      const text = await (await fetch(url.replace(/\/graphql$/, "/metrics"))).text();
      const match = /^orders_live_subscriptions (\d+)/m.exec(text);
      return match !== null && Number(match[1]) >= n;
    },
    { what: `${n} live subscription(s)` },
  );
}

/**
 * One test file's service: a fresh database and NATS prefix, the service
 * started before the file's tests and stopped, with its stream and database
 * removed, after them. Call at the top of a describe block; the handlers it
 * gets run after this one's beforeAll.
 */
export function useTestService(options: Omit<TestServiceOptions, "databaseUrl" | "natsPrefix"> = {}) {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let app: TestService | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestService({ ...options, databaseUrl: db.url, natsPrefix: prefix });
  });
  afterAll(async () => {
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });
  return {
    get app(): TestService {
      return app!;
    },
    get url(): string {
      return app!.url!;
    },
  };
}
