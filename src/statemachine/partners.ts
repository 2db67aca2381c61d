/**
 * The partner scopes a bearer token may carry, each the right to one partner
 * callback: the payment provider confirms payments; the carrier and the travel
 * partner report progress to the module whose definition names their scope.
 */
export const partnerScopes = ["payments", "logistics", "travelium"] as const;
export type PartnerScope = (typeof partnerScopes)[number];
