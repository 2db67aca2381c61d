CREATE TABLE "finance_invoice_counter" (
	"id" integer PRIMARY KEY NOT NULL,
	"last" integer NOT NULL,
	CONSTRAINT "finance_invoice_counter_one_row" CHECK ("finance_invoice_counter"."id" = 1)
);
--> statement-breakpoint
DROP SEQUENCE "public"."finance_invoice_number_seq";