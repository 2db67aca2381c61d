import { type AuthFailure, AuthScopeFailureType } from "@pothos/plugin-scope-auth";
import { RefusedError } from "../errors.ts";
import { type PartnerScope, partnerScopes } from "../statemachine/partners.ts";
import type { OrderRow } from "../statemachine/tables.ts";

export { type PartnerScope, partnerScopes };

export const roles = ["customer", "partner", "admin"] as const;

export interface Caller {
  id: string;
  role: (typeof roles)[number];
  scopes: PartnerScope[];
}

/** The scopes fields name in their authScopes: who may do what (CONTRACT.md). */
export interface AuthScopes {
  signedIn: boolean;
  customer: boolean;
  admin: boolean;
  /** A partner with this scope. */
  partner: PartnerScope;
}

export function authScopesOf(context: { caller?: Caller }) {
  const { caller } = context;
  return {
    signedIn: caller !== undefined,
    customer: caller?.role === "customer",
    admin: caller?.role === "admin",
    partner: (scope: PartnerScope) => caller?.role === "partner" && caller.scopes.includes(scope),
  };
}

/** The rules fields use. An admin does everything. */
export const signedIn = { signedIn: true } as const;
export const customerOrAdmin = { customer: true, admin: true } as const;
export const adminOnly = { admin: true } as const;
export const partnerOrAdmin = (scope: PartnerScope) => ({ partner: scope, admin: true }) as const;

/** A refusal keeps the contract's codes: UNAUTHENTICATED without a valid token, FORBIDDEN with one. */
export function refusalOf(context: { caller?: Caller; tokenRefused?: string }, failure: AuthFailure): Error {
  const { caller } = context;
  if (!caller)
    return new RefusedError("UNAUTHENTICATED", context.tokenRefused ?? "this operation needs a bearer token");
  const scope = partnerScopeIn(failure);
  if (scope) return new RefusedError("FORBIDDEN", `needs a partner token with scope ${scope}`);
  return new RefusedError("FORBIDDEN", `not allowed for role ${caller.role}`);
}

function partnerScopeIn(failure: AuthFailure): PartnerScope | undefined {
  if (failure.kind === AuthScopeFailureType.AuthScope && failure.scope === "partner")
    return failure.parameter as PartnerScope;
  if (
    failure.kind === AuthScopeFailureType.AnyAuthScopes ||
    failure.kind === AuthScopeFailureType.AllAuthScopes
  )
    return failure.failures.map(partnerScopeIn).find((s) => s !== undefined);
  return undefined;
}

/** The caller of a field whose authScopes let only signed-in callers through. */
export function callerOf(context: { caller?: Caller }): Caller {
  if (!context.caller) throw new Error("a field without authScopes asked for the caller");
  return context.caller;
}

/** The caller as an event's actor (order_events.actor): `customer:c-1`, `partner:psp`, `admin:ops`. */
export function actorOf(caller: Caller): string {
  return `${caller.role}:${caller.id}`;
}

/** Customers see their own orders; partners read the orders they act on (any); admins see all. */
export function canSee(caller: Caller, order: Pick<OrderRow, "customerId">): boolean {
  return caller.role !== "customer" || order.customerId === caller.id;
}
