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
--> statement-breakpoint
-- InvoiceIssued events written before the event carried the invoice: the outbox gets it too, so a delivery
-- of such an event still on the stream is read with it (the notifier looks the outbox row up), and so does
-- any later publication of the row.
UPDATE "order_events" AS e
SET "payload" = e."payload" || jsonb_build_object('invoice', jsonb_build_object(
  'number', f."invoice_number",
  'amount', f."amount",
  'currency', f."currency",
  'paymentReference', f."payment_reference",
  'issuedAt', to_char(f."created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
))
FROM "finance_invoices" AS f
WHERE e."type" = 'InvoiceIssued'
  AND f."order_id" = e."order_id"
  AND NOT (e."payload" ? 'invoice')
  AND f."invoice_number" IS NOT NULL;
