import { randomUUID } from "node:crypto";
import { count } from "drizzle-orm";
import fc from "fast-check";
import { print } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { orderEvents } from "../src/relay/tables.ts";
import { salesOrders } from "../src/statemachine/tables.ts";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import {
  CancelOrder,
  ConfirmPayment,
  OrderById,
  OrderStateChanged,
  Orders,
  PlaceOrder,
  Products,
} from "./support/operations.ts";
import { deleteStream, gqlData, startTestService, type TestService, tokens } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

/**
 * Random and malformed input thrown at the real server (PostgreSQL,
 * JetStream): documents, variables, bodies and WebSocket frames. Bounded
 * (`numRuns` per property) so the file stays well under a minute.
 */
const numRuns = 60;
const seedEnv = process.env.FUZZ_SEED;
const runOptions = { numRuns, ...(seedEnv ? { seed: Number(seedEnv) } : {}) };

interface Answer {
  status: number;
  text: string;
  body: unknown;
}

interface ErrorJson {
  message?: string;
  extensions?: { code?: string };
}

const validDocuments = [
  print(PlaceOrder),
  print(ConfirmPayment),
  print(CancelOrder),
  print(OrderById),
  print(Orders),
  print(Products),
  print(OrderStateChanged),
  "{ __typename }",
  "query { products { sku name kind price { amount currency } } }",
];

const graphqlTokens = [
  "{",
  "}",
  "(",
  ")",
  "[",
  "]",
  ":",
  "...",
  "$",
  "!",
  "=",
  "@",
  "|",
  "&",
  ",",
  "query",
  "mutation",
  "subscription",
  "fragment",
  "on",
  "products",
  "orders",
  "order",
  "placeOrder",
  "confirmPayment",
  "orderStateChanged",
  "sku",
  "__typename",
  "__schema",
  "__type",
  "id",
  "input",
  "first",
  "Query",
  "Mutation",
  "Int",
  "ID",
  '"str"',
  '"""block"""',
  '"\\u0000"',
  "1",
  "-1",
  "1.5e10",
  "99999999999999999999",
  "true",
  "null",
  "#comment\n",
  "@include(if: true)",
  "@skip(if: $x)",
];

/** A document-ish string: a random string, or a random sequence of GraphQL tokens. */
const randomDocument = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: "grapheme-ascii", maxLength: 300 }),
  fc
    .array(fc.oneof(fc.constantFrom(...graphqlTokens), fc.string({ maxLength: 6 })), { maxLength: 80 })
    .map((parts) => parts.join(" ")),
);

type Edit =
  | { kind: "delete"; at: number; length: number }
  | { kind: "insert"; at: number; text: string }
  | { kind: "duplicate"; at: number; length: number }
  | { kind: "replace"; at: number; text: string };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...graphqlTokens), fc.string({ unit: "binary", maxLength: 8 })),
  }),
  fc.record({
    kind: fc.constant("duplicate" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    kind: fc.constant("replace" as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...graphqlTokens), fc.string({ maxLength: 3 })),
  }),
);

function applyEdits(document: string, edits: Edit[]): string {
  let text = document;
  for (const e of edits) {
    const at = text.length === 0 ? 0 : e.at % (text.length + 1);
    if (e.kind === "delete") text = text.slice(0, at) + text.slice(at + e.length);
    else if (e.kind === "insert") text = text.slice(0, at) + e.text + text.slice(at);
    else if (e.kind === "duplicate")
      text = text.slice(0, at + e.length) + text.slice(at, at + e.length) + text.slice(at);
    else text = text.slice(0, at) + e.text + text.slice(at + e.text.length);
  }
  return text;
}

/** A valid document with 1 to 6 random edits. */
const mutatedDocument = fc
  .tuple(fc.constantFrom(...validDocuments), fc.array(edit, { minLength: 1, maxLength: 6 }))
  .map(([document, edits]) => applyEdits(document, edits));

/** Junk for variables: wrong types, huge and odd numbers, nulls, nested arrays and objects. */
const junkLeaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(
    1e308,
    -1e308,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 31 - 1,
    0,
    -0,
    0.5,
    -1,
    1e-300,
    Number.MAX_SAFE_INTEGER,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "EBOOK-1",
    "EUR",
    "ada@example.com",
    "null",
    "{}",
    "' or 1=1 --",
    randomUUID(),
  ),
  fc.string({ minLength: 250, maxLength: 600 }),
);
const { junk } = fc.letrec<{ junk: unknown }>((tie) => ({
  junk: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    junkLeaf,
    fc.array(tie("junk"), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(
        fc.constantFrom(
          "lines",
          "sku",
          "quantity",
          "contactEmail",
          "idempotencyKey",
          "orderId",
          "amount",
          "currency",
        ),
        fc.string({ maxLength: 8 }),
      ),
      tie("junk"),
      { maxKeys: 5 },
    ),
  ),
}));

/** Variables keyed by the names the documents declare (and some they do not), with junk values. */
const junkVariables = fc.dictionary(
  fc.oneof(
    fc.constantFrom("input", "id", "first", "after", "status", "orderId"),
    fc.string({ maxLength: 6 }),
  ),
  junk,
  { maxKeys: 4 },
);

/** Every variable of the typed documents, each given a value of the wrong type. */
const wrongTypedVariables = fc.oneof(
  fc.record({
    document: fc.constant(print(Orders)),
    variables: fc.record({
      first: fc.oneof(
        fc.string(),
        fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }),
        fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 1e300),
        fc.boolean(),
        fc.array(fc.integer()),
      ),
    }),
  }),
  fc.record({
    document: fc.constant(print(Orders)),
    variables: fc.record({ status: fc.string().filter((s) => !/^[A-Z_]+$/.test(s)) }),
  }),
  fc.record({
    document: fc.constant(print(PlaceOrder)),
    variables: fc.record({
      input: fc.record({
        lines: fc.constant([{ sku: "EBOOK-1", quantity: 1 }]),
        contactEmail: fc.constant("ada@example.com"),
        idempotencyKey: fc.oneof(fc.integer(), fc.boolean(), fc.dictionary(fc.string(), fc.string())),
      }),
    }),
  }),
  fc.record({
    document: fc.constant(print(PlaceOrder)),
    variables: fc.record({
      input: fc.record({
        lines: fc.array(
          fc.record({
            sku: fc.constant("EBOOK-1"),
            quantity: fc.oneof(
              fc.string(),
              fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true }),
            ),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        contactEmail: fc.constant("ada@example.com"),
        idempotencyKey: fc.string({ minLength: 1, maxLength: 20 }),
      }),
    }),
  }),
  fc.record({
    document: fc.constant(print(ConfirmPayment)),
    variables: fc.record({
      input: fc.record({
        orderId: fc.uuid(),
        paymentReference: fc.constant("psp"),
        amount: fc.oneof(fc.string(), fc.constantFrom(2 ** 31, 1e300, 0.25)),
        currency: fc.constant("EUR"),
      }),
    }),
  }),
);

/** A V8 stack frame line, as it would appear in a leaked stack trace. */
const stackFrame = /\n\s+at .+:\d+:\d+\)?/;

function hasKeyDeep(value: unknown, keys: string[]): boolean {
  if (Array.isArray(value)) return value.some((v) => hasKeyDeep(v, keys));
  if (value !== null && typeof value === "object") {
    return Object.entries(value).some(([k, v]) => keys.includes(k) || hasKeyDeep(v, keys));
  }
  return false;
}

describe("fuzzing the gateway with random input", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService;
  let url: string;
  /** Every 5xx seen, with what caused it: reported at the end (ideally none). */
  const serverErrors: string[] = [];
  /** WebSocket close codes the random frames led to. */
  const closeCodes = new Map<number, number>();
  const internalCloses: string[] = [];
  /** HTTP answers that were event streams (valid subscriptions): counted, not parsed. */
  const streams: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestService({
      databaseUrl: db.url,
      natsPrefix: prefix,
      // Robustness, not throttling, is under test here: the per-caller limits would otherwise refuse the batch.
      env: {
        RATE_LIMIT_PER_MINUTE: "1000000",
        MAX_CONNECTIONS_PER_CALLER: "1000",
        MAX_SUBSCRIPTIONS_PER_CALLER: "1000",
      },
    });
    url = app.url!;
  });

  afterAll(async () => {
    console.log(
      serverErrors.length === 0
        ? "fuzz: no 5xx answer"
        : `fuzz: ${serverErrors.length} 5xx answer(s):\n${serverErrors.map((e) => `  - ${e}`).join("\n")}`,
    );
    console.log(
      `fuzz: WebSocket close codes after random frames: ${JSON.stringify(Object.fromEntries(closeCodes))}`,
    );
    console.log(`fuzz: ${streams.length} HTTP answer(s) were event streams`);
    if (internalCloses.length > 0) {
      console.log(`fuzz: 4500 closes:\n${internalCloses.map((e) => `  - ${e}`).join("\n")}`);
    }
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  const send = async (init: RequestInit & { search?: string }): Promise<Answer> => {
    const { search, ...rest } = init;
    const response = await fetch(search === undefined ? url : `${url}?${search}`, {
      ...rest,
      signal: AbortSignal.timeout(10_000),
    });
    let text: string;
    if (/event-stream|multipart/.test(response.headers.get("content-type") ?? "")) {
      // A subscription that is valid stays open (SSE): its status and first chunk are enough.
      const reader = response.body!.getReader();
      const first = await Promise.race([
        reader.read(),
        new Promise<undefined>((resolve) => setTimeout(resolve, 300)),
      ]);
      await reader.cancel().catch(() => {});
      text = first?.value ? Buffer.from(first.value).toString() : "";
      streams.push(`${response.status} ${text.slice(0, 80)}`);
      return { status: response.status, text, body: { stream: true } };
    }
    text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, text, body };
  };

  const post = (body: string, headers: Record<string, string> = {}) =>
    send({ method: "POST", headers: { "content-type": "application/json", ...headers }, body });

  const postGraphQL = (payload: Record<string, unknown>, token?: string) =>
    post(JSON.stringify(payload), token ? { authorization: `Bearer ${token}` } : {});

  /**
   * Never a 5xx, except a 500 whose body is the masked INTERNAL_SERVER_ERROR
   * (recorded for the report); never a stack trace.
   */
  const expectSafe = (answer: Answer, input: unknown) => {
    const what = `${JSON.stringify(input).slice(0, 300)} -> HTTP ${answer.status} ${answer.text.slice(0, 300)}`;
    if (answer.status >= 500) {
      serverErrors.push(what);
      expect(answer.status, what).toBe(500);
      const errors = (answer.body as { errors?: ErrorJson[] } | undefined)?.errors ?? [];
      expect(errors.length, what).toBeGreaterThan(0);
      for (const e of errors) expect(e.extensions?.code, what).toBe("INTERNAL_SERVER_ERROR");
    }
    expect(answer.text, what).not.toMatch(stackFrame);
    expect(hasKeyDeep(answer.body, ["stack", "stacktrace", "exception"]), what).toBe(false);
  };

  const codes = (answer: Answer) =>
    ((answer.body as { errors?: ErrorJson[] } | undefined)?.errors ?? []).map((e) => e.extensions?.code);

  const rowCounts = async () => {
    const database = app.service.database.db;
    const [orders] = await database.select({ n: count() }).from(salesOrders);
    const [events] = await database.select({ n: count() }).from(orderEvents);
    return { orders: orders!.n, events: events!.n };
  };

  /** Counts that stay put for a while: no background work (relay, listeners) still writing. */
  const settledCounts = async () => {
    let last = await rowCounts();
    await eventually(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 150));
        const now = await rowCounts();
        const same = now.orders === last.orders && now.events === last.events;
        last = now;
        return same;
      },
      { what: "the row counts to settle" },
    );
    return last;
  };

  describe("documents", () => {
    it("random strings as the document never get a 5xx (POST and GET)", async () => {
      await fc.assert(
        fc.asyncProperty(randomDocument, fc.boolean(), async (query, viaGet) => {
          const answer = viaGet
            ? await send({ method: "GET", search: new URLSearchParams({ query }).toString() })
            : await postGraphQL({ query });
          expectSafe(answer, { query, viaGet });
          // Whatever the status, the answer is a GraphQL response: JSON with errors (or data).
          expect(
            answer.body,
            `${JSON.stringify(query)} -> HTTP ${answer.status} ${answer.text.slice(0, 200)}`,
          ).toEqual(expect.objectContaining({}));
        }),
        runOptions,
      );
    });

    it("random edits of valid documents never get a 5xx", async () => {
      const customer = await tokens.customer();
      await fc.assert(
        fc.asyncProperty(mutatedDocument, fc.boolean(), async (query, withToken) => {
          const answer = await postGraphQL({ query }, withToken ? customer : undefined);
          expectSafe(answer, { query, withToken });
        }),
        runOptions,
      );
    });

    it("deeply nested selections, values and fragments never get a 5xx", async () => {
      const shapes = {
        unknownFields: (n: number) => `${"{ a ".repeat(n)}${"}".repeat(n)}`,
        inlineFragments: (n: number) => `${"{ ... on Query ".repeat(n)}{ __typename }${" }".repeat(n)}`,
        listArguments: (n: number) => `{ products(x: ${"[".repeat(n)}1${"]".repeat(n)}) { sku } }`,
        objectArguments: (n: number) => `{ products(x: ${"{a: ".repeat(n)}1${"}".repeat(n)}) { sku } }`,
        aliases: (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(" ")} }`,
        directives: (n: number) => `{ __typename ${"@include(if: true) ".repeat(n)}}`,
        fragmentCycle: (n: number) =>
          `{ ...F0 } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${(i + 1) % n} }`).join(" ")}`,
        orderSelections: (n: number) =>
          `{ orders { edges { node { ${"events { id } lines { sku } ".repeat(n)} } } } }`,
        openBraces: (n: number) => "{".repeat(n),
      };
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...(Object.keys(shapes) as (keyof typeof shapes)[])),
          fc.integer({ min: 1, max: 5_000 }),
          fc.boolean(),
          async (shape, depth, withToken) => {
            const query = shapes[shape](depth);
            const answer = await postGraphQL({ query }, withToken ? await tokens.admin() : undefined);
            expectSafe(answer, { shape, depth });
          },
        ),
        runOptions,
      );
    });
  });

  describe("variables", () => {
    it("random variables (wrong types, huge numbers, nulls, nested junk) never get a 5xx", async () => {
      const customer = await tokens.customer();
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...validDocuments),
          junkVariables,
          fc.constantFrom<"none" | "customer" | "payments">("none", "customer", "payments"),
          async (query, variables, who) => {
            const token =
              who === "customer" ? customer : who === "payments" ? await tokens.payments() : undefined;
            const answer = await postGraphQL({ query, variables }, token);
            expectSafe(answer, { query: query.slice(0, 40), variables, who });
          },
        ),
        runOptions,
      );
    });

    it("a variable of the wrong type is a client error, never a masked INTERNAL_SERVER_ERROR", async () => {
      const customer = await tokens.customer();
      await fc.assert(
        fc.asyncProperty(wrongTypedVariables, async ({ document, variables }) => {
          const answer = await postGraphQL({ query: document, variables }, customer);
          expectSafe(answer, variables);
          const what = `${JSON.stringify(variables)} -> HTTP ${answer.status} ${answer.text.slice(0, 300)}`;
          const found = codes(answer);
          expect(found.length, what).toBeGreaterThan(0);
          expect(found, what).not.toContain("INTERNAL_SERVER_ERROR");
        }),
        { ...runOptions, numRuns: 30 },
      );
    });

    it("deeply nested variables are refused as a client error, never a masked INTERNAL_SERVER_ERROR", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 100_000 }),
          fc.constantFrom("array", "object"),
          async (depth, kind) => {
            const nested =
              kind === "array"
                ? `${"[".repeat(depth)}${"]".repeat(depth)}`
                : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
            // An undeclared variable: the operation itself is fine, only the junk beside it is deep.
            const body = `{"query":"{ products { sku } }","variables":{"junk":${nested}}}`;
            const answer = await post(body);
            expectSafe(answer, { depth, kind });
            const what = `depth ${depth} ${kind} (${body.length} bytes) -> HTTP ${answer.status} ${answer.text.slice(0, 300)}`;
            expect(codes(answer), what).not.toContain("INTERNAL_SERVER_ERROR");
          },
        ),
        { ...runOptions, numRuns: 20 },
      );
    });
  });

  describe("bodies", () => {
    it("random JSON bodies (arrays, numbers, strings, objects with or without a query) never get a 5xx", async () => {
      const field = fc.oneof(fc.jsonValue(), mutatedDocument, fc.constant(undefined));
      const body = fc.oneof(
        fc.jsonValue(),
        fc.record(
          { query: field, variables: field, operationName: field, extensions: field },
          { requiredKeys: [] },
        ),
        fc.array(fc.record({ query: fc.constantFrom(...validDocuments) }), { maxLength: 3 }),
      );
      await fc.assert(
        fc.asyncProperty(body, async (value) => {
          const answer = await post(JSON.stringify(value) ?? "undefined");
          expectSafe(answer, value);
        }),
        runOptions,
      );
    });

    it("a body that is not JSON is a 4xx, whatever it holds", async () => {
      const notJson = fc
        .oneof(
          fc.string({ unit: "binary", maxLength: 200 }),
          fc.jsonValue().map((v) => `${JSON.stringify(v)}}`),
          fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1)),
        )
        .filter((text) => {
          try {
            JSON.parse(text);
            return false;
          } catch {
            return true;
          }
        });
      await fc.assert(
        fc.asyncProperty(notJson, async (text) => {
          const answer = await post(text);
          expectSafe(answer, text);
          expect(answer.status, `${JSON.stringify(text)} -> ${answer.text}`).toBeGreaterThanOrEqual(400);
          expect(answer.status, `${JSON.stringify(text)} -> ${answer.text}`).toBeLessThan(500);
        }),
        runOptions,
      );
    });

    it("random bytes under random content types never get a 5xx", async () => {
      const contentType = fc.constantFrom(
        "application/json",
        "application/json; charset=utf-16",
        "application/graphql",
        "application/graphql-response+json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "text/plain",
        "text/event-stream",
        "application/octet-stream",
        "",
        "*/*",
      );
      const accept = fc.constantFrom(
        "application/json",
        "application/graphql-response+json",
        "text/event-stream",
        "multipart/mixed",
        "text/html",
        "*/*",
        "",
      );
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 300 }),
          contentType,
          accept,
          async (bytes, type, acceptHeader) => {
            const headers: Record<string, string> = { "content-type": type };
            if (acceptHeader) headers.accept = acceptHeader;
            const answer = await send({ method: "POST", headers, body: bytes });
            expectSafe(answer, { bytes: Buffer.from(bytes).toString("base64"), type, acceptHeader });
          },
        ),
        runOptions,
      );
    });
  });

  describe("refused mutations change nothing", () => {
    const knownSkus = ["EBOOK-1", "MUG-1", "TRIP-LIS", "BOX-MONTHLY"] as const;
    const goodLine = fc.record({
      sku: fc.constantFrom(...knownSkus),
      quantity: fc.integer({ min: 1, max: 3 }),
    });
    const goodLines = fc.array(goodLine, { minLength: 1, maxLength: 3 });
    const noAt = fc.string({ unit: "binary", maxLength: 60 }).map((s) => s.replaceAll("@", ""));

    type Who = "none" | "customer" | "payments" | "logistics" | "admin";
    interface Call {
      mutation: "placeOrder" | "confirmPayment";
      who: Who;
      variables: Record<string, unknown>;
      defect: string;
    }

    const tokenOf = async (who: Who) =>
      who === "none"
        ? undefined
        : who === "customer"
          ? await tokens.customer()
          : who === "payments"
            ? await tokens.payments()
            : who === "logistics"
              ? await tokens.logistics()
              : await tokens.admin();

    /** placeOrder calls that must each be refused: every one carries at least one defect. */
    const refusedPlacements = (takenKey: string): fc.Arbitrary<Call> => {
      const input = (lines: unknown, contactEmail: unknown, idempotencyKey: unknown) => ({
        input: { lines, contactEmail, idempotencyKey },
      });
      const key = fc.uuid().map((k) => `fuzz-${k}`);
      const call = (defect: string, who: Who, variables: Record<string, unknown>): Call => ({
        mutation: "placeOrder",
        who,
        variables,
        defect,
      });
      return fc.oneof(
        fc
          .tuple(goodLines, key, fc.constantFrom<Who>("none", "payments", "logistics"))
          .map(([lines, k, who]) => call(`not a customer (${who})`, who, input(lines, "ada@example.com", k))),
        key.map((k) => call("no lines", "customer", input([], "ada@example.com", k))),
        fc
          .tuple(
            goodLines,
            fc.constantFrom(...knownSkus),
            fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 10_001 })),
            key,
          )
          .map(([lines, sku, quantity, k]) =>
            call(
              `quantity ${quantity}`,
              "customer",
              input([...lines, { sku, quantity }], "ada@example.com", k),
            ),
          ),
        fc
          .tuple(
            goodLines,
            fc.string({ maxLength: 70 }).filter((s) => !(knownSkus as readonly string[]).includes(s)),
            key,
          )
          .map(([lines, sku, k]) =>
            call(
              `unknown sku ${JSON.stringify(sku)}`,
              "customer",
              input([{ sku, quantity: 1 }, ...lines], "ada@example.com", k),
            ),
          ),
        fc
          .tuple(
            goodLines,
            fc.oneof(
              noAt,
              noAt.map((s) => `${s}@nodot`),
              fc.constant(`${"a".repeat(250)}@example.com`),
            ),
            key,
          )
          .map(([lines, email, k]) =>
            call(`bad email ${JSON.stringify(email)}`, "customer", input(lines, email, k)),
          ),
        fc
          .tuple(
            goodLines,
            fc.oneof(
              fc.constant(""),
              fc.string({ minLength: 201, maxLength: 400 }).filter((s) => s.length > 200),
            ),
          )
          .map(([lines, k]) =>
            call(`bad key of ${k.length}`, "customer", input(lines, "ada@example.com", k)),
          ),
        fc.tuple(fc.integer({ min: 101, max: 150 }), key).map(([n, k]) =>
          call(
            `${n} lines`,
            "customer",
            input(
              Array.from({ length: n }, () => ({ sku: "EBOOK-1", quantity: 1 })),
              "ada@example.com",
              k,
            ),
          ),
        ),
        fc.tuple(fc.integer({ min: 48, max: 100 }), key).map(([n, k]) =>
          call(
            `total over 2^31 (${n} x 10000 TRIP-LIS)`,
            "customer",
            input(
              Array.from({ length: n }, () => ({ sku: "TRIP-LIS", quantity: 10_000 })),
              "ada@example.com",
              k,
            ),
          ),
        ),
        goodLines
          .filter((lines) => !(lines.length === 1 && lines[0]!.sku === "MUG-1" && lines[0]!.quantity === 1))
          .map((lines) =>
            call("a taken key with other lines", "customer", input(lines, "ada@example.com", takenKey)),
          ),
        fc
          .tuple(goodLines, key, junk)
          .filter(([, , j]) => typeof j !== "string")
          .map(([lines, k, j]) => call("contactEmail of the wrong type", "customer", input(lines, j, k))),
        fc
          .tuple(key, junk)
          // A single object would be coerced to a one-item list: leave out anything that could be a line.
          .filter(([, j]) => !Array.isArray(j) && !(j !== null && typeof j === "object" && "sku" in j))
          .map(([k, j]) => call("lines of the wrong type", "customer", input(j, "ada@example.com", k))),
      );
    };

    /** confirmPayment calls that must each be refused, against a PENDING order whose total is 1500 EUR. */
    const refusedConfirmations = (orderId: string): fc.Arbitrary<Call> => {
      const reference = fc.string({ minLength: 1, maxLength: 50 }).map((s) => `fuzz-${s}`);
      const call = (defect: string, who: Who, input: Record<string, unknown>): Call => ({
        mutation: "confirmPayment",
        who,
        variables: { input },
        defect,
      });
      return fc.oneof(
        fc.tuple(reference, fc.constantFrom<Who>("none", "customer", "logistics")).map(([ref, who]) =>
          call(`not a payments partner (${who})`, who, {
            orderId,
            paymentReference: ref,
            amount: 1500,
            currency: "EUR",
          }),
        ),
        fc
          .tuple(
            reference,
            fc.integer().filter((a) => a !== 1500),
          )
          .map(([ref, amount]) =>
            call(`amount ${amount}`, "payments", { orderId, paymentReference: ref, amount, currency: "EUR" }),
          ),
        fc
          .tuple(
            reference,
            fc.string({ maxLength: 5 }).filter((c) => c !== "EUR"),
          )
          .map(([ref, currency]) =>
            call(`currency ${JSON.stringify(currency)}`, "payments", {
              orderId,
              paymentReference: ref,
              amount: 1500,
              currency,
            }),
          ),
        fc.constantFrom("", "x".repeat(201), "y".repeat(1000)).map((ref) =>
          call(`reference of ${ref.length}`, "payments", {
            orderId,
            paymentReference: ref,
            amount: 1500,
            currency: "EUR",
          }),
        ),
        fc.tuple(reference, fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }))).map(([ref, id]) =>
          call(`unknown order ${JSON.stringify(id)}`, "payments", {
            orderId: id,
            paymentReference: ref,
            amount: 1500,
            currency: "EUR",
          }),
        ),
        fc
          .tuple(reference, junk)
          .filter(([, j]) => !Number.isInteger(j) || Math.abs(j as number) > 2 ** 31)
          .map(([ref, amount]) =>
            call("amount of the wrong type", "payments", {
              orderId,
              paymentReference: ref,
              amount,
              currency: "EUR",
            }),
          ),
      );
    };

    it("refused placeOrder and confirmPayment calls with random invalid input add no sales_orders or order_events row", async () => {
      const customer = await tokens.customer();
      const takenKey = `fuzz-taken-${randomUUID()}`;
      // A PENDING order (1 MUG-1: 1500 EUR) for confirmPayment to aim at; its key is the one reused with other lines.
      const { placeOrder } = await gqlData(
        url,
        PlaceOrder,
        {
          input: {
            lines: [{ sku: "MUG-1", quantity: 1 }],
            contactEmail: "ada@example.com",
            idempotencyKey: takenKey,
          },
        },
        customer,
      );
      const orderId = placeOrder.order.id;
      const before = await settledCounts();
      const refusals = new Map<string, number>();

      await fc.assert(
        fc.asyncProperty(
          fc.oneof(refusedPlacements(takenKey), refusedConfirmations(orderId)),
          async ({ mutation, who, variables, defect }) => {
            const query = mutation === "placeOrder" ? print(PlaceOrder) : print(ConfirmPayment);
            const answer = await postGraphQL({ query, variables }, await tokenOf(who));
            expectSafe(answer, { mutation, who, defect, variables });
            const what = `${mutation} as ${who}, ${defect}: ${JSON.stringify(variables).slice(0, 300)} -> HTTP ${answer.status} ${answer.text.slice(0, 300)}`;
            const body = answer.body as { data?: Record<string, unknown> | null; errors?: ErrorJson[] };
            expect(body.errors?.length ?? 0, what).toBeGreaterThan(0);
            expect(body.data?.[mutation] ?? null, what).toBeNull();
            for (const code of codes(answer))
              refusals.set(String(code), (refusals.get(String(code)) ?? 0) + 1);
            expect(await rowCounts(), what).toEqual(before);
          },
        ),
        { ...runOptions, numRuns: 80 },
      );
      console.log(`fuzz: refusal codes seen: ${JSON.stringify(Object.fromEntries(refusals))}`);
      // And after the whole batch, nothing arrived late either; the order is still PENDING.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await rowCounts()).toEqual(before);
      const read = await gqlData(url, OrderById, { id: orderId }, await tokens.admin());
      expect(read.order?.status).toBe("PENDING");
    }, 60_000);
  });

  describe("WebSocket frames", () => {
    const protocolTypes = [
      "connection_init",
      "connection_ack",
      "ping",
      "pong",
      "subscribe",
      "next",
      "error",
      "complete",
      "start",
      "stop",
      "connection_terminate",
      "ka",
    ];
    const subscribePayload = fc.record(
      {
        query: fc.oneof(fc.constantFrom(...validDocuments), mutatedDocument, randomDocument, junk),
        variables: fc.oneof(junkVariables, junk),
        operationName: fc.oneof(fc.string({ maxLength: 10 }), junk),
        extensions: junk,
      },
      { requiredKeys: [] },
    );
    const messageLike = fc.record(
      {
        type: fc.oneof(fc.constantFrom(...protocolTypes), fc.string({ maxLength: 8 }), junk),
        id: fc.oneof(fc.constantFrom("1", "2", "same"), fc.string({ maxLength: 8 }), junk),
        payload: fc.oneof(subscribePayload, junk, fc.record({ authorization: fc.oneof(fc.string(), junk) })),
      },
      { requiredKeys: [] },
    );
    /** Frames the protocol's parser accepts, so the server goes on to parse, validate and run them. */
    const wellFormed = fc.oneof(
      fc
        .record({
          id: fc.oneof(fc.constantFrom("1", "2", "same"), fc.string({ minLength: 1, maxLength: 8 })),
          query: fc.oneof(fc.constantFrom(...validDocuments), mutatedDocument, randomDocument),
          variables: fc.oneof(fc.constant(null), junkVariables),
        })
        .map(({ id, query, variables }) => ({ id, type: "subscribe", payload: { query, variables } })),
      fc.constantFrom("1", "2", "same").map((id) => ({ id, type: "complete" })),
      fc.constantFrom({ type: "ping" }, { type: "pong" }, { type: "ping", payload: { x: 1 } }),
    );
    const frame = fc.oneof(
      { weight: 6, arbitrary: wellFormed.map((m) => JSON.stringify(m)) },
      { weight: 3, arbitrary: messageLike.map((m) => JSON.stringify(m)) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
      { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    );

    const connect = () =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(url.replace(/^http/, "ws"), "graphql-transport-ws");
        ws.once("open", () => resolve(ws));
        ws.once("error", reject);
      });

    /** A fresh connection does the whole handshake and runs a query. */
    const freshConnectionWorks = async () => {
      const ws = await connect();
      const frames: { type: string; id?: string; payload?: { data?: { products?: unknown[] } } }[] = [];
      ws.on("message", (data) => frames.push(JSON.parse(String(data))));
      try {
        ws.send(JSON.stringify({ type: "connection_init" }));
        await eventually(() => frames.some((f) => f.type === "connection_ack"), {
          what: "connection_ack",
          timeoutMs: 5_000,
        });
        ws.send(JSON.stringify({ id: "check", type: "subscribe", payload: { query: print(Products) } }));
        const next = await eventually(() => frames.find((f) => f.id === "check" && f.type === "next"), {
          what: "the products",
          timeoutMs: 5_000,
        });
        return (next.payload?.data?.products?.length ?? 0) > 0;
      } finally {
        ws.terminate();
      }
    };

    it("random frames never take the server down: a fresh connection works after each batch", async () => {
      const customer = await tokens.customer();
      expect(await freshConnectionWorks()).toBe(true);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<"none" | "anonymous" | "customer">("none", "anonymous", "customer"),
          fc.array(frame, { minLength: 1, maxLength: 8 }),
          async (init, frames) => {
            const ws = await connect();
            let closed: { code: number; reason: string } | undefined;
            ws.on("close", (code, reason) => {
              closed = { code, reason: String(reason) };
            });
            ws.on("error", () => {});
            if (init !== "none") {
              ws.send(
                JSON.stringify({
                  type: "connection_init",
                  ...(init === "customer" ? { payload: { authorization: `Bearer ${customer}` } } : {}),
                }),
              );
            }
            for (const f of frames) if (ws.readyState === WebSocket.OPEN) ws.send(f);
            await new Promise((resolve) => setTimeout(resolve, 40));
            const seen = closed;
            ws.terminate();
            if (seen) {
              closeCodes.set(seen.code, (closeCodes.get(seen.code) ?? 0) + 1);
              if (seen.code === 4500)
                internalCloses.push(`${seen.reason} <- ${frames.map(String).join(" | ").slice(0, 300)}`);
              // The server closes with a code of its own choosing, never by dropping the connection.
              expect(seen.code, `${seen.reason} <- ${frames.map(String).join(" | ").slice(0, 300)}`).not.toBe(
                1006,
              );
            } else {
              closeCodes.set(0, (closeCodes.get(0) ?? 0) + 1);
            }
            expect(await freshConnectionWorks()).toBe(true);
          },
        ),
        runOptions,
      );
    }, 60_000);
  });

  describe("afterwards", () => {
    it("the process is alive and ready, and a normal query still works", async () => {
      const base = url.replace(/\/graphql$/, "");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const products = await gqlData(url, Products, {});
      expect(products.products.map((p) => p.sku)).toEqual(
        expect.arrayContaining(["EBOOK-1", "MUG-1", "TRIP-LIS", "BOX-MONTHLY"]),
      );
    });
  });
});
