import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { readConfig } from "../src/config.ts";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { deleteStream, startTestService, type TestService, tokenFor, tokens } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

interface Answer {
  status: number;
  body: { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
  headers: Headers;
}

async function post(url: string, body: unknown, token?: string): Promise<Answer> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {}, headers: response.headers };
}

/** One graphql-transport-ws connection, driven frame by frame. */
async function socket(url: string, token?: string) {
  const ws = new WebSocket(url.replace(/^http/, "ws"), "graphql-transport-ws");
  const messages: { type: string; id?: string; payload?: unknown }[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on("message", (data) => messages.push(JSON.parse(String(data))));
  ws.on("close", (code, reason) => {
    closed = { code, reason: String(reason) };
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(
    JSON.stringify({ type: "connection_init", payload: token ? { authorization: `Bearer ${token}` } : {} }),
  );
  await eventually(() => messages.some((m) => m.type === "connection_ack") || closed !== undefined, {
    what: "ack",
  });
  let ids = 0;
  return {
    messages,
    closed: () => closed,
    subscribe(query: string, extensions?: Record<string, unknown>) {
      const id = String(++ids);
      ws.send(JSON.stringify({ id, type: "subscribe", payload: { query, extensions } }));
      return id;
    },
    /** The first next or error for an operation. */
    async answer(id: string) {
      return eventually(
        () => messages.find((m) => m.id === id && (m.type === "next" || m.type === "error")),
        {
          what: `answer to ${id}`,
        },
      );
    },
    close: () => ws.close(),
  };
}

const codeOf = (payload: unknown): string | undefined => {
  const errors = Array.isArray(payload) ? payload : (payload as { errors?: unknown[] })?.errors;
  return (errors?.[0] as { extensions?: { code?: string } } | undefined)?.extensions?.code;
};

describe("the gateway's protections", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const services: TestService[] = [];
  let url: string;
  let jwks: Server;
  let jwksUrl: string;
  const keys = generateKeyPair("RS256");

  const start = async (env: Record<string, string>) => {
    const service = await startTestService({
      databaseUrl: db.url,
      natsPrefix: prefix,
      roles: "gateway",
      env,
    });
    services.push(service);
    return service.url!;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    url = await start({});
    const { publicKey } = await keys;
    const jwk = { ...(await exportJWK(publicKey)), kid: "test-key", alg: "RS256", use: "sig" };
    jwks = createServer((_req, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] })),
    );
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
  });

  afterAll(async () => {
    for (const service of services) await service.stop();
    jwks?.close();
    await deleteStream(prefix);
    await db?.drop();
  });

  describe("limits, on HTTP and WebSocket alike", () => {
    const aliases = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `p${i}: products { sku }`).join(" ")} }`;
    // The schema has no cycle deeper than 6, so a deeper document is also invalid: the point is
    // that the depth rule names it, at any depth a client may send.
    const nested = (depth: number) => `{ ${"products { ".repeat(depth - 1)}sku${" }".repeat(depth)}`;

    it("refuses more than 15 aliases", async () => {
      expect((await post(url, { query: aliases(15) })).body.errors).toBeUndefined();
      const refused = await post(url, { query: aliases(16) });
      expect(refused.body.errors?.[0]?.message).toMatch(/alias/i);
      const ws = await socket(url);
      expect(JSON.stringify((await ws.answer(ws.subscribe(aliases(16)))).payload)).toMatch(/alias/i);
      ws.close();
    });

    it("refuses a depth over 10", async () => {
      const deepest = "{ orders { edges { node { lines { unitPrice { amount } } } } } }";
      expect((await post(url, { query: deepest }, await tokens.customer())).body.errors).toBeUndefined();
      expect(JSON.stringify((await post(url, { query: nested(10) })).body.errors)).not.toMatch(/depth/i);
      const refused = await post(url, { query: nested(11) });
      expect(JSON.stringify(refused.body.errors)).toMatch(/depth/i);
      const ws = await socket(url);
      expect(JSON.stringify((await ws.answer(ws.subscribe(nested(11)))).payload)).toMatch(/depth/i);
      ws.close();
    });

    it("refuses more than 1,000 tokens", async () => {
      const long = `{ ${"__typename ".repeat(1200)} }`;
      const refused = await post(url, { query: long });
      expect(JSON.stringify(refused.body.errors)).toMatch(/token/i);
      const ws = await socket(url);
      expect(JSON.stringify((await ws.answer(ws.subscribe(long))).payload)).toMatch(/token/i);
      ws.close();
    });

    it("refuses a body over 1 MB with 413, and a WebSocket message over it by closing", async () => {
      const huge = { query: "{ __typename }", variables: { pad: "x".repeat(1_100_000) } };
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(huge),
      });
      expect(response.status).toBe(413);
      const ws = await socket(url);
      ws.subscribe(`{ __typename } # ${"x".repeat(1_100_000)}`);
      await eventually(() => ws.closed(), { what: "the close" });
      expect(ws.closed()!.code).toBe(1009);
    });

    it("refuses a chunked body (no Content-Length) once it passes 1 MB, with 413", async () => {
      // The gateway's own count is the only guard on such a body: yoga's is turned off (http.ts).
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          url,
          { method: "POST", headers: { "content-type": "application/json" } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.write(`{"query":"{ __typename }","variables":{"pad":"`);
        for (let i = 0; i < 11; i++) req.write("x".repeat(100_000));
        req.end(`"}}`);
      });
      expect(status).toBe(413);
    });
  });

  it("answers FORBIDDEN over WebSocket as over HTTP: a role or scope the operation does not allow", async () => {
    const partner = await socket(url, await tokens.logistics());
    const place = partner.subscribe(
      'mutation { placeOrder(input: { lines: [{ sku: "EBOOK-1", quantity: 1 }], contactEmail: "a@b.co", idempotencyKey: "ws-forbidden" }) { eventId } }',
    );
    expect(codeOf((await partner.answer(place)).payload)).toBe("FORBIDDEN");
    const pay = partner.subscribe(
      'mutation { confirmPayment(input: { orderId: "00000000-0000-0000-0000-000000000000", paymentReference: "p", amount: 1, currency: "EUR" }) { eventId } }',
    );
    expect(codeOf((await partner.answer(pay)).payload)).toBe("FORBIDDEN");
    partner.close();
  });

  it("answers RATE_LIMITED past the caller's rate, on HTTP and WebSocket", async () => {
    const limited = await start({ RATE_LIMIT_PER_MINUTE: "5" });
    const token = await tokens.customer();
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 6; i++)
      codes.push(codeOf((await post(limited, { query: "{ orders { edges { cursor } } }" }, token)).body));
    expect(codes.slice(0, 5)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(codes[5]).toBe("RATE_LIMITED");
    const ws = await socket(limited, token);
    expect(codeOf((await ws.answer(ws.subscribe("{ products { sku } }"))).payload)).toBe("RATE_LIMITED");
    ws.close();
    // Another caller has a budget of its own.
    expect(
      codeOf((await post(limited, { query: "{ orders { edges { cursor } } }" }, await tokens.admin())).body),
    ).toBeUndefined();
  });

  it("bounds live subscriptions per caller and WebSocket connections per caller", async () => {
    const bounded = await start({ MAX_SUBSCRIPTIONS_PER_CALLER: "2", MAX_CONNECTIONS_PER_CALLER: "2" });
    const token = await tokens.customer();
    const ws = await socket(bounded, token);
    const live = "subscription { orderStateChanged { eventId } }";
    // The server handles the three side by side: whichever it reaches last is the one refused.
    const ids = [ws.subscribe(live), ws.subscribe(live), ws.subscribe(live)];
    const refused = await eventually(
      () => ws.messages.find((m) => m.id && ids.includes(m.id) && m.type !== "complete"),
      {
        what: "the refusal",
      },
    );
    expect(codeOf(refused.payload)).toBe("RATE_LIMITED");
    await new Promise((r) => setTimeout(r, 200));
    expect(ws.messages.filter((m) => m.id && ids.includes(m.id) && m.type !== "complete")).toHaveLength(1);
    ws.close();
    await eventually(() => ws.closed(), { what: "the close" });
    // Closing released them: two again.
    const again = await socket(bounded, token);
    again.subscribe(live);
    const second = again.subscribe(live);
    await new Promise((r) => setTimeout(r, 200));
    expect(again.messages.find((m) => m.id === second && m.type === "error")).toBeUndefined();

    const other = await socket(bounded, token);
    const tooMany = await socket(bounded, token);
    await eventually(() => tooMany.closed(), { what: "the refused connection" });
    expect(tooMany.closed()!.code).toBe(4429);
    again.close();
    other.close();
  });

  it("turns introspection off on both transports when configured (the production default)", async () => {
    const closed = await start({ INTROSPECTION: "false" });
    const query = "{ __schema { types { name } } }";
    expect(JSON.stringify((await post(closed, { query })).body.errors)).toMatch(/introspection/i);
    const ws = await socket(closed);
    expect(JSON.stringify((await ws.answer(ws.subscribe(query))).payload)).toMatch(/introspection/i);
    ws.close();
    expect((await post(url, { query })).body.errors).toBeUndefined();
    expect(() => readConfig({ NODE_ENV: "production" })).toThrow(/JWT_SECRET or JWT_JWKS_URL/);
    expect(readConfig({ NODE_ENV: "production", JWT_SECRET: "s" }).gateway.introspection).toBe(false);
  });

  it("accepts tokens of an identity provider from its JWKS, checking issuer and audience", async () => {
    const idp = await start({
      JWT_JWKS_URL: jwksUrl,
      JWT_ISSUER: "https://idp.example",
      JWT_AUDIENCE: "orders-api",
    });
    const { privateKey } = await keys;
    const sign = (claims: { iss: string; aud: string }) =>
      new SignJWT({ role: "customer", scopes: [] })
        .setProtectedHeader({ alg: "RS256", kid: "test-key" })
        .setSubject("idp-customer")
        .setIssuer(claims.iss)
        .setAudience(claims.aud)
        .setExpirationTime("5m")
        .sign(privateKey);
    const query = "{ orders { edges { cursor } } }";
    expect(
      (await post(idp, { query }, await sign({ iss: "https://idp.example", aud: "orders-api" }))).body.errors,
    ).toBeUndefined();
    expect(
      codeOf((await post(idp, { query }, await sign({ iss: "https://idp.example", aud: "other" }))).body),
    ).toBe("UNAUTHENTICATED");
    expect(
      codeOf(
        (await post(idp, { query }, await sign({ iss: "https://evil.example", aud: "orders-api" }))).body,
      ),
    ).toBe("UNAUTHENTICATED");
    // HS256 tokens signed with JWT_SECRET still work beside it.
    expect((await post(idp, { query }, await tokens.customer())).body.errors).toBeUndefined();
  });

  it("closes the socket with 4403 when a token has expired by the time of a subscribe", async () => {
    const shortLived = await tokenFor({ role: "customer", id: "customer-1" }, "4s");
    const ws = await socket(url, shortLived);
    expect(ws.messages.some((m) => m.type === "connection_ack")).toBe(true);
    await new Promise((r) => setTimeout(r, 4_600));
    ws.subscribe("subscription { orderStateChanged { eventId } }");
    await eventually(() => ws.closed(), { what: "the close" });
    expect(ws.closed()!.code).toBe(4403);
  });

  it("runs only trusted documents when configured, on HTTP and WebSocket", async () => {
    // The file `npm run codegen` writes for the documents of this repository's clients (here, the tests).
    const file = join(import.meta.dirname, "generated", "persisted-documents.json");
    const store = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
    const [key, document] = Object.entries(store).find(([, text]) => text.startsWith("query Products"))!;
    const hash = key.replace(/^sha256:/, "");
    expect(createHash("sha256").update(document).digest("hex")).toBe(hash);
    const trusted = await start({ TRUSTED_DOCUMENTS: file });
    const byHash = { extensions: { persistedQuery: { version: 1, sha256Hash: hash } } };
    expect((await post(trusted, byHash)).body.data).toMatchObject({ products: expect.any(Array) });
    const arbitrary = await post(trusted, { query: document });
    expect(arbitrary.body.data).toBeUndefined();
    expect(arbitrary.body.errors).toBeDefined();
    const ws = await socket(trusted);
    expect((await ws.answer(ws.subscribe("", byHash.extensions))).type).toBe("next");
    expect(codeOf((await ws.answer(ws.subscribe(document))).payload)).toBe("PERSISTED_QUERY_ONLY");
    ws.close();
  });

  it("refuses, with CSRF prevention on (the production default), a request no preflight guarded", async () => {
    const guarded = await start({ CSRF_PREVENTION: "true" });
    const get = (headers: Record<string, string>) =>
      fetch(`${guarded}?query=${encodeURIComponent("{ products { sku } }")}`, { headers });
    // A cross-site link or form cannot add a header: refused.
    expect((await get({})).status).toBe(403);
    const form = await fetch(guarded, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "query=%7B__typename%7D",
    });
    expect(form.status).toBe(403);
    // A client that can set headers (which a browser preflights) goes through.
    expect((await get({ "x-graphql-csrf": "1" })).status).toBe(200);
    expect((await get({ authorization: `Bearer ${await tokens.customer()}` })).status).toBe(200);
    expect((await post(guarded, { query: "{ products { sku } }" })).status).toBe(200);
    expect(readConfig({ NODE_ENV: "production", JWT_SECRET: "s" }).gateway.csrfPrevention).toBe(true);
  });

  it("sends security headers and no stack in any error", async () => {
    const answer = await post(url, { query: "{ products { nope } }" });
    expect(answer.headers.get("x-content-type-options")).toBe("nosniff");
    expect(answer.headers.get("x-frame-options")).toBe("DENY");
    expect(answer.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(JSON.stringify(answer.body)).not.toMatch(/\bat .*\.ts:\d+|originalError|stack/);
  });
});
