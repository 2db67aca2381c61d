import { jwtVerify } from "jose";
import { refuse } from "../errors.ts";
import type { OrderRow } from "../statemachine/tables.ts";

export const roles = ["customer", "partner", "admin"] as const;
export const partnerScopes = ["payments", "logistics", "travelium"] as const;
export type PartnerScope = (typeof partnerScopes)[number];

export interface Caller {
  id: string;
  role: (typeof roles)[number];
  scopes: PartnerScope[];
}

/** What the bearer token said: nobody, a caller, or a token we refuse. */
export type Authentication =
  | { kind: "anonymous" }
  | { kind: "caller"; caller: Caller }
  | { kind: "invalid"; reason: string };

export async function authenticate(
  authorization: string | null | undefined,
  secret: Uint8Array,
): Promise<Authentication> {
  if (!authorization) return { kind: "anonymous" };
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match) return { kind: "invalid", reason: "the Authorization header must be `Bearer <token>`" };
  try {
    const { payload } = await jwtVerify(match[1]!, secret, { algorithms: ["HS256"] });
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

export function requireCaller(auth: Authentication): Caller {
  if (auth.kind === "caller") return auth.caller;
  return refuse(
    "UNAUTHENTICATED",
    auth.kind === "invalid" ? auth.reason : "this operation needs a bearer token",
  );
}

export function requireRole(auth: Authentication, ...allowed: Caller["role"][]): Caller {
  const caller = requireCaller(auth);
  if (caller.role !== "admin" && !allowed.includes(caller.role))
    refuse("FORBIDDEN", `not allowed for role ${caller.role}`);
  return caller;
}

/** A partner with the scope, or an admin. */
export function requireScope(auth: Authentication, scope: PartnerScope): Caller {
  const caller = requireCaller(auth);
  if (caller.role === "admin") return caller;
  if (caller.role !== "partner" || !caller.scopes.includes(scope))
    refuse("FORBIDDEN", `needs a partner token with scope ${scope}`);
  return caller;
}

/** Customers see their own orders; partners read the orders they act on (any); admins see all. */
export function canSee(caller: Caller, order: Pick<OrderRow, "customerId">): boolean {
  return caller.role !== "customer" || order.customerId === caller.id;
}
