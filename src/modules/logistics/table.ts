import { jsonb } from "drizzle-orm/pg-core";
import { moduleStateTable } from "../../statemachine/module-table.ts";

export const shipmentStates = ["waiting", "picked", "packed", "shipped", "delivered", "returned"] as const;
export type ShipmentState = (typeof shipmentStates)[number];

export const logisticsShipments = moduleStateTable("logistics_shipments", shipmentStates, {
  /** What the warehouse picks: the order's physical lines. */
  pickList: jsonb("pick_list").$type<{ sku: string; quantity: number }[]>().notNull(),
});
