/**
 * The gateway's protections, each configurable from the environment. The
 * defaults are those of CONTRACT.md's "Limits".
 */
export interface GatewayOptions {
  /** MAX_DEPTH: deepest selection. Default 10. */
  maxDepth: number;
  /** MAX_ALIASES: aliases in one operation. Default 15. */
  maxAliases: number;
  /** MAX_TOKENS: lexer tokens in one document. Default 1000. */
  maxTokens: number;
  /** MAX_COST: graphql-armor's cost estimate of one operation. Default 5000. */
  maxCost: number;
  /** MAX_BODY_BYTES: an HTTP body or a WebSocket message. Default 1 MiB. */
  maxBodyBytes: number;
  /** RATE_LIMIT_PER_MINUTE: operations per caller (token subject, or IP without a token). Default 600. */
  rateLimitPerMinute: number;
  /** MAX_SUBSCRIPTIONS_PER_CALLER: live subscriptions at once, WebSocket and SSE together. Default 20. */
  maxSubscriptionsPerCaller: number;
  /** MAX_CONNECTIONS_PER_CALLER: WebSocket connections at once. Default 10. */
  maxConnectionsPerCaller: number;
  /** FEED_RECENT_ORDERS: orders whose last state the order feed remembers, to drop a change seen twice. Default 10000. */
  feedRecentOrders: number;
  /** INTROSPECTION: "true"/"false". Default: on, except when NODE_ENV=production. */
  introspection: boolean;
  /**
   * CSRF_PREVENTION: "true"/"false". Default: on when NODE_ENV=production. A request a browser sends
   * without a preflight (a GET, a form post) must carry Authorization or X-GraphQL-CSRF, which no
   * cross-site form or link can add.
   */
  csrfPrevention: boolean;
  /** CORS_ORIGINS: comma list of allowed origins, or "*". Default "*" (bearer tokens, no cookies). */
  corsOrigins: string[] | "*";
  /** TRUSTED_DOCUMENTS: a persisted-documents JSON (hash → document); when set, only those run. Default unset. */
  trustedDocuments: string | undefined;
  /** JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE: tokens from an identity provider, besides JWT_SECRET. */
  jwksUrl: string | undefined;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
}

type Env = Record<string, string | undefined>;

function count(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name}: "${raw}" is not a positive whole number`);
  return value;
}

export function readGatewayOptions(env: Env): GatewayOptions {
  const production = env.NODE_ENV === "production";
  const origins = (env.CORS_ORIGINS ?? "*").trim();
  const options: GatewayOptions = {
    maxDepth: count(env, "MAX_DEPTH", 10),
    maxAliases: count(env, "MAX_ALIASES", 15),
    maxTokens: count(env, "MAX_TOKENS", 1000),
    maxCost: count(env, "MAX_COST", 5000),
    maxBodyBytes: count(env, "MAX_BODY_BYTES", 1024 * 1024),
    rateLimitPerMinute: count(env, "RATE_LIMIT_PER_MINUTE", 600),
    maxSubscriptionsPerCaller: count(env, "MAX_SUBSCRIPTIONS_PER_CALLER", 20),
    maxConnectionsPerCaller: count(env, "MAX_CONNECTIONS_PER_CALLER", 10),
    feedRecentOrders: count(env, "FEED_RECENT_ORDERS", 10_000),
    introspection: env.INTROSPECTION ? env.INTROSPECTION === "true" : !production,
    csrfPrevention: env.CSRF_PREVENTION ? env.CSRF_PREVENTION === "true" : production,
    corsOrigins:
      origins === "*"
        ? "*"
        : origins
            .split(",")
            .map((o) => o.trim())
            .filter(Boolean),
    trustedDocuments: env.TRUSTED_DOCUMENTS || undefined,
    jwksUrl: env.JWT_JWKS_URL || undefined,
    jwtIssuer: env.JWT_ISSUER || undefined,
    jwtAudience: env.JWT_AUDIENCE || undefined,
  };
  if (production && !env.JWT_SECRET && !options.jwksUrl) {
    throw new Error("JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=production");
  }
  return options;
}
