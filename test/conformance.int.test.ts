import { type AuditResult, serverAudits } from "graphql-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { deleteStream, startTestService, type TestService } from "./support/service.ts";

/**
 * The GraphQL-over-HTTP specification, as the `graphql-http` audit suite checks
 * it, against the real server: an audit that answers "error" (a MUST the
 * server breaks) fails its test; "warn" and "notice" (SHOULD, MAY) are
 * collected and printed once at the end.
 */
describe("GraphQL over HTTP conformance", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: TestService;
  let url: string;
  const advisories: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestService({ databaseUrl: db.url, natsPrefix: prefix });
    url = app.url!;
  });

  afterAll(async () => {
    if (advisories.length > 0) {
      console.log(
        `graphql-http audits: ${advisories.length} warning(s)/notice(s)\n${advisories.map((a) => `  - ${a}`).join("\n")}`,
      );
    } else {
      console.log("graphql-http audits: no warnings");
    }
    await app?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  /** What the audit's response said, when its body is still readable. */
  const describeResponse = async (result: AuditResult): Promise<string> => {
    if (result.status === "ok") return "";
    const { response } = result;
    let body = "";
    try {
      body = (await response.clone().text()).slice(0, 500);
    } catch {
      body = "(body already read)";
    }
    return `HTTP ${response.status} ${response.headers.get("content-type") ?? ""} ${body}`;
  };

  describe("graphql-http server audits", () => {
    // The URL is only known once beforeAll has started the server; the audits ask for it when they run.
    const audits = serverAudits({ url: () => url });

    it("the audit suite is not empty", () => {
      expect(audits.length).toBeGreaterThan(20);
    });

    for (const audit of audits) {
      it(`${audit.id} ${audit.name}`, async () => {
        const result = await audit.fn();
        if (result.status === "ok") return;
        const detail = await describeResponse(result);
        if (result.status === "error") {
          expect.fail(`${result.id} ${result.name}: ${result.reason}\n${detail}`);
        }
        advisories.push(`[${result.status}] ${result.id} ${result.name}: ${result.reason} (${detail})`);
      });
    }
  });

  describe("malformed bodies and status codes", () => {
    const post = async (body: string, headers: Record<string, string> = {}) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
      });
      return {
        status: response.status,
        contentType: response.headers.get("content-type"),
        text: await response.text(),
      };
    };

    const malformed = [
      "{not json",
      '{"query": "{ products { sku } }"',
      '{"query": "{ products { sku } }",}',
      "{'query': '{ products { sku } }'}",
      '{"query": "{ products { sku } }"} trailing',
      "\u0000\u0001\u0002",
      "undefined",
      "",
    ];

    for (const body of malformed) {
      for (const accept of ["application/json", "application/graphql-response+json"]) {
        it(`a malformed JSON body ${JSON.stringify(body)} (accept ${accept}) is a 4xx, never a 5xx`, async () => {
          const { status, text } = await post(body, { accept });
          expect(status, text).toBeGreaterThanOrEqual(400);
          expect(status, text).toBeLessThan(500);
          // And no stack trace rides along with the refusal.
          expect(text).not.toMatch(/\bat .+\.(ts|js|mjs|cjs):\d+/);
          expect(text).not.toMatch(/node_modules|\/work\//);
        });
      }
    }

    const strict = { accept: "application/graphql-response+json" };

    it("with Accept: application/graphql-response+json a validation error is 400", async () => {
      const { status, contentType, text } = await post(JSON.stringify({ query: "{ noSuchField }" }), strict);
      expect(status, text).toBe(400);
      expect(contentType).toContain("application/graphql-response+json");
      const body = JSON.parse(text) as { data?: unknown; errors?: { message: string }[] };
      expect(body.errors?.length).toBeGreaterThan(0);
      expect(body).not.toHaveProperty("data");
    });

    it("with Accept: application/graphql-response+json a document parse error is 400", async () => {
      const { status, contentType, text } = await post(
        JSON.stringify({ query: "{ products { sku " }),
        strict,
      );
      expect(status, text).toBe(400);
      expect(contentType).toContain("application/graphql-response+json");
      const body = JSON.parse(text) as { data?: unknown; errors?: { message: string }[] };
      expect(body.errors?.[0]?.message).toMatch(/syntax error/i);
      expect(body).not.toHaveProperty("data");
    });

    it("with Accept: application/graphql-response+json a variable of the wrong type is 400, not a masked internal error", async () => {
      // The spec: a response without `data` MUST be 4xx or 5xx; variable coercion failures SHOULD be 400.
      const query = "query ($first: Int) { orders(first: $first) { pageInfo { hasNextPage } } }";
      for (const first of ["ten", 1e300, 2 ** 31, { nested: [1] }, [1], true]) {
        const { status, text } = await post(JSON.stringify({ query, variables: { first } }), strict);
        const body = JSON.parse(text) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
        expect(
          {
            status,
            hasData: "data" in body,
            masked: body.errors?.some((e) => e.extensions?.code === "INTERNAL_SERVER_ERROR") ?? false,
          },
          `first: ${JSON.stringify(first)} -> HTTP ${status} ${text}`,
        ).toEqual({ status: 400, hasData: false, masked: false });
      }
    });
  });
});
