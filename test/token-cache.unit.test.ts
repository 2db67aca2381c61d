import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { authenticate, createVerifier, rememberVerified } from "../src/gateway/tokens.ts";
import { secretKey, signToken } from "../src/tokens.ts";

const secret = secretKey("token-cache-test");

describe("verified tokens remembered", () => {
  afterEach(() => vi.useRealTimers());

  it("verifies a token's signature once, and still answers the same caller each time", async () => {
    let verifications = 0;
    const inner = createVerifier({ secret });
    const verify = rememberVerified(async (token) => {
      verifications++;
      return inner(token);
    });
    const token = await signToken(secret, { id: "c1", role: "customer", scopes: [] });
    for (let i = 0; i < 3; i++)
      expect(await authenticate(`Bearer ${token}`, verify)).toEqual({
        kind: "caller",
        caller: { id: "c1", role: "customer", scopes: [] },
      });
    expect(verifications).toBe(1);
  });

  it("refuses a remembered token once it has expired", async () => {
    const verify = createVerifier({ secret });
    const token = await signToken(secret, { id: "c1", role: "customer", scopes: [] }, "10s");
    expect((await authenticate(`Bearer ${token}`, verify)).kind).toBe("caller");
    vi.useFakeTimers({ now: Date.now() + 11_000 });
    expect(await authenticate(`Bearer ${token}`, verify)).toEqual({
      kind: "invalid",
      reason: "the token has expired",
    });
  });

  it("remembers no refused token, and no token of another signature", async () => {
    const verify = createVerifier({ secret });
    const token = await signToken(secret, { id: "c1", role: "customer", scopes: [] });
    expect((await authenticate(`Bearer ${token}`, verify)).kind).toBe("caller");
    const forged = await new SignJWT({ role: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("c1")
      .sign(secretKey("another-secret"));
    for (let i = 0; i < 2; i++) expect((await authenticate(`Bearer ${forged}`, verify)).kind).toBe("invalid");
  });
});
