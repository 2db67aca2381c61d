/**
 * The catalog as this process last read it, so that placing an order needs
 * no read of its own: the placement's statement checks that every product it
 * priced from here is still as read (see insertPlacement), and when one is
 * not, the caller reads those products again and decides again. A product
 * changed by another process is found out by that check, not by a timer.
 */
import { inArray, sql } from "drizzle-orm";
import type { Executor } from "../db/database.ts";
import { products } from "./catalog.ts";
import type { CatalogProduct } from "./decide.ts";

/** Enough for any real catalog's hot products; past it, the oldest read is dropped and read again when needed. */
const remembered = 10_000;

export class KnownProducts {
  private readonly bySku = new Map<string, CatalogProduct>();

  /**
   * The products of these SKUs, read from the database only where not known
   * (`fresh`: all of them); `read`: every one of them was read just now.
   */
  async get(
    db: Executor,
    skus: readonly string[],
    fresh = false,
  ): Promise<{ products: Map<string, CatalogProduct>; read: boolean }> {
    const missing = fresh ? skus : skus.filter((sku) => !this.bySku.has(sku));
    if (missing.length > 0) {
      const rows = await db
        .select({
          sku: products.sku,
          name: products.name,
          kind: products.kind,
          priceAmount: products.priceAmount,
          currency: products.currency,
        })
        .from(products)
        .where(inArray(products.sku, [...missing]));
      // A SKU read and not found is not remembered: it may be added at any time.
      for (const sku of missing) this.bySku.delete(sku);
      for (const row of rows) this.remember(row);
    }
    const found = new Map<string, CatalogProduct>();
    for (const sku of skus) {
      const product = this.bySku.get(sku);
      if (product) found.set(sku, product);
    }
    return { products: found, read: missing.length === skus.length };
  }

  private remember(product: CatalogProduct): void {
    this.bySku.set(product.sku, product);
    if (this.bySku.size > remembered) this.bySku.delete(this.bySku.keys().next().value!);
  }
}

/**
 * True when every product is in the catalog as given, in the statement's own
 * snapshot: the guard a placement priced from KnownProducts writes under.
 */
export function productsUnchanged(priced: readonly CatalogProduct[]): ReturnType<typeof sql> {
  const json = JSON.stringify(
    priced.map((p) => ({
      sku: p.sku,
      name: p.name,
      kind: p.kind,
      price_amount: p.priceAmount,
      currency: p.currency,
    })),
  );
  return sql`(select count(*) = ${priced.length} from ${products} p
    join jsonb_to_recordset(${json}::jsonb) as given(sku text, name text, kind text, price_amount integer, currency text)
      on p.sku = given.sku and p.name = given.name and p.kind = given.kind
        and p.price_amount = given.price_amount and p.currency = given.currency)`;
}
