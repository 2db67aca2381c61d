import { SignJWT } from "jose";
import type { Caller } from "./schema/auth.ts";

export function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export async function signToken(secret: Uint8Array, caller: Caller, expiresIn = "30d"): Promise<string> {
  return new SignJWT({ role: caller.role, scopes: caller.scopes })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(caller.id)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(secret);
}

/** One token per role, for trying the API without an identity provider. */
export const demoCallers: Caller[] = [
  { id: "customer-1", role: "customer", scopes: [] },
  { id: "payment-provider", role: "partner", scopes: ["payments"] },
  { id: "carrier", role: "partner", scopes: ["logistics"] },
  { id: "travel-partner", role: "partner", scopes: ["travelium"] },
  { id: "admin", role: "admin", scopes: [] },
];
