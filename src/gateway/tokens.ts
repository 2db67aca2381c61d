import { createRemoteJWKSet, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from "jose";
import { type Caller, type PartnerScope, partnerScopes, roles } from "../schema/auth.ts";

/** What the bearer token said: nobody, a caller, or a token we refuse. */
export type Authentication =
  | { kind: "anonymous" }
  | { kind: "caller"; caller: Caller }
  | { kind: "invalid"; reason: string };

/** Checks a token's signature and claims; rejects when it is not valid. */
export type TokenVerifier = (token: string) => Promise<JWTPayload>;

/**
 * HS256 tokens signed with JWT_SECRET, and tokens of an identity provider
 * whose keys are at JWT_JWKS_URL (fetched and cached by jose), with the
 * issuer and audience checks production users configure.
 */
export function createVerifier(options: {
  secret?: Uint8Array;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}): TokenVerifier {
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  return rememberVerified(async (token) => {
    const { alg } = decodeProtectedHeader(token);
    if (alg === "HS256" && options.secret) {
      return (await jwtVerify(token, options.secret, { algorithms: ["HS256"] })).payload;
    }
    if (alg !== "HS256" && jwks) {
      return (await jwtVerify(token, jwks, { issuer: options.issuer, audience: options.audience })).payload;
    }
    throw new Error(`no key for a token signed with ${alg}`);
  });
}

/**
 * Verifying a signature costs more than answering a small query (WebCrypto's
 * HMAC is an async job with its own allocations): a client sends the same
 * token with every request, so a token verified once is remembered, by its
 * whole text (signature included), until it expires. Only valid tokens are
 * remembered; the oldest is forgotten past `size` (default 10000).
 */
export function rememberVerified(verify: TokenVerifier, size = 10_000): TokenVerifier {
  const verified = new Map<string, JWTPayload>();
  return async (token) => {
    const known = verified.get(token);
    if (known) {
      if (known.exp === undefined || known.exp * 1000 > Date.now()) return known;
      verified.delete(token);
      throw new errors.JWTExpired('"exp" claim timestamp check failed', known, "exp", "check_failed");
    }
    const payload = await verify(token);
    // A token not valid yet (nbf) is checked again each time until it is.
    if (payload.nbf === undefined) {
      if (verified.size >= size) verified.delete(verified.keys().next().value!);
      verified.set(token, payload);
    }
    return payload;
  };
}

export async function authenticate(
  authorization: string | null | undefined,
  verify: TokenVerifier,
): Promise<Authentication> {
  if (!authorization) return { kind: "anonymous" };
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match) return { kind: "invalid", reason: "the Authorization header must be `Bearer <token>`" };
  try {
    const payload = await verify(match[1]!);
    const role = payload.role;
    if (typeof payload.sub !== "string" || payload.sub.length === 0)
      return { kind: "invalid", reason: "the token has no sub" };
    if (!roles.includes(role as Caller["role"]))
      return { kind: "invalid", reason: "the token has no known role" };
    const scopes = Array.isArray(payload.scopes)
      ? payload.scopes.filter((s): s is PartnerScope => partnerScopes.includes(s as PartnerScope))
      : [];
    return { kind: "caller", caller: { id: payload.sub, role: role as Caller["role"], scopes } };
  } catch (error) {
    const expired = error instanceof Error && "code" in error && error.code === "ERR_JWT_EXPIRED";
    return { kind: "invalid", reason: expired ? "the token has expired" : "the token is not valid" };
  }
}

/** The resolvers' view of an authentication: the caller, or why the token was refused. */
export function callerFields(auth: Authentication): { caller?: Caller; tokenRefused?: string } {
  if (auth.kind === "caller") return { caller: auth.caller };
  if (auth.kind === "invalid") return { tokenRefused: auth.reason };
  return {};
}
