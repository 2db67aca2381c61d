import { jsonb } from "drizzle-orm/pg-core";
import { moduleStateTable } from "../../statemachine/module-table.ts";

export const subscriptionStates = ["pending", "active", "terminated"] as const;
export type SubscriptionState = (typeof subscriptionStates)[number];

export const subscriptionContracts = moduleStateTable("subscription_contracts", subscriptionStates, {
  /** The subscribed SKUs and quantities. */
  plans: jsonb("plans").$type<{ sku: string; quantity: number }[]>().notNull(),
});
