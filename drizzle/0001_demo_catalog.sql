-- A small catalog, one product of each kind, so a fresh install can take an order at once.
-- Admins change it with upsertProduct; a SKU already there is left as it is.
INSERT INTO "products" ("sku", "name", "kind", "price_amount", "currency") VALUES
  ('EBOOK-1', 'The Order Machine (e-book)', 'digital', 1299, 'EUR'),
  ('MUG-1', 'Netorigo mug', 'physical', 1500, 'EUR'),
  ('TRIP-LIS', 'Weekend in Lisbon', 'travel', 45000, 'EUR'),
  ('BOX-MONTHLY', 'Coffee box, monthly', 'subscription', 2900, 'EUR')
ON CONFLICT ("sku") DO NOTHING;
