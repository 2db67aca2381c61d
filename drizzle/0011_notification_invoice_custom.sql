-- Confirmation emails not sent yet heard InvoiceIssued before it carried the invoice:
-- give them the invoice as Finance wrote it, so they go out as they would have.
UPDATE "notifications" AS n
SET "invoice" = jsonb_build_object(
  'number', f."invoice_number",
  'amount', f."amount",
  'currency', f."currency",
  'paymentReference', f."payment_reference",
  'issuedAt', to_char(f."created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
)
FROM "finance_invoices" AS f
WHERE f."order_id" = n."order_id"
  AND n."kind" = 'confirmed'
  AND n."invoice" IS NULL
  AND f."invoice_number" IS NOT NULL;
