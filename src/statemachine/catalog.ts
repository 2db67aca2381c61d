import { sql } from "drizzle-orm";
import { check, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";

export const productKinds = ["physical", "travel", "digital", "subscription"] as const;
export type ProductKind = (typeof productKinds)[number];

export const products = pgTable(
  "products",
  {
    sku: text("sku").primaryKey(),
    name: text("name").notNull(),
    kind: text("kind").$type<ProductKind>().notNull(),
    priceAmount: integer("price_amount").notNull(),
    currency: text("currency").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    check("products_kind", sql`${t.kind} in ('physical', 'travel', 'digital', 'subscription')`),
    check("products_price", sql`${t.priceAmount} >= 0`),
  ],
);

export type ProductRow = typeof products.$inferSelect;
