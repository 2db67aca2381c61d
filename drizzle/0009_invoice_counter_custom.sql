-- Gap-free invoice numbers: the counter starts after the highest number already issued (INV-000042 → 42).
INSERT INTO "finance_invoice_counter" ("id", "last")
SELECT 1, coalesce(max(substring("invoice_number" from '^INV-([0-9]+)$')::integer), 0)
FROM "finance_invoices"
ON CONFLICT ("id") DO NOTHING;
