import { asc } from "drizzle-orm";
import { refuse } from "../errors.ts";
import { type ProductKind, type ProductRow, productKinds, products } from "../statemachine/catalog.ts";
import { adminOnly } from "./auth.ts";
import type { Builder } from "./builder.ts";
import { upperEnum } from "./enums.ts";

export interface Money {
  amount: number;
  currency: string;
}

export function addProducts(builder: Builder) {
  const ProductKindEnum = builder.enumType("ProductKind", { values: upperEnum(productKinds) });

  const MoneyRef = builder.objectRef<Money>("Money").implement({
    fields: (t) => ({
      amount: t.exposeInt("amount", { description: "Amount in minor units (cents)." }),
      currency: t.exposeString("currency", { description: "ISO 4217 code." }),
    }),
  });

  const ProductRef = builder.objectRef<ProductRow>("Product").implement({
    fields: (t) => ({
      sku: t.exposeString("sku"),
      name: t.exposeString("name"),
      kind: t.field({ type: ProductKindEnum, resolve: (p) => p.kind }),
      price: t.field({ type: MoneyRef, resolve: (p) => ({ amount: p.priceAmount, currency: p.currency }) }),
    }),
  });

  builder.queryField("products", (t) =>
    t.field({
      type: [ProductRef],
      resolve: (_root, _args, ctx) => ctx.database.db.select().from(products).orderBy(asc(products.sku)),
    }),
  );

  const UpsertProductInput = builder.inputType("UpsertProductInput", {
    fields: (t) => ({
      sku: t.string({ required: true }),
      name: t.string({ required: true }),
      kind: t.field({ type: ProductKindEnum, required: true }),
      price: t.int({ required: true }),
      currency: t.string({ required: true }),
    }),
  });

  builder.mutationField("upsertProduct", (t) =>
    t.field({
      type: ProductRef,
      description: "Admin.",
      authScopes: adminOnly,
      args: { input: t.arg({ type: UpsertProductInput, required: true }) },
      resolve: async (_root, { input }, ctx) => {
        if (!/^[A-Za-z0-9._-]{1,64}$/.test(input.sku))
          refuse("BAD_USER_INPUT", "sku must be 1 to 64 of A-Z a-z 0-9 . _ -");
        if (input.name.trim().length === 0 || input.name.length > 200)
          refuse("BAD_USER_INPUT", "name must be 1 to 200 characters");
        if (input.price < 0) refuse("BAD_USER_INPUT", "price must not be negative");
        if (!/^[A-Z]{3}$/.test(input.currency)) refuse("BAD_USER_INPUT", "currency must be an ISO 4217 code");
        const row = {
          sku: input.sku,
          name: input.name,
          kind: input.kind as ProductKind,
          priceAmount: input.price,
          currency: input.currency,
        };
        const [saved] = await ctx.database.db
          .insert(products)
          .values(row)
          .onConflictDoUpdate({ target: products.sku, set: { ...row, updatedAt: new Date() } })
          .returning();
        return saved!;
      },
    }),
  );

  return { MoneyRef, ProductKindEnum };
}
