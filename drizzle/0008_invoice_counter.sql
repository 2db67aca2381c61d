CREATE TABLE "finance_invoice_counter" (
	"id" integer PRIMARY KEY NOT NULL,
	"last" integer NOT NULL,
	CONSTRAINT "finance_invoice_counter_one_row" CHECK ("finance_invoice_counter"."id" = 1)
);
--> statement-breakpoint
ALTER TABLE "notifications" DROP CONSTRAINT "notifications_status";--> statement-breakpoint
ALTER TABLE "notifications" DROP COLUMN "claimed_until";--> statement-breakpoint
ALTER TABLE "notifications" ADD CONSTRAINT "notifications_status" CHECK ("notifications"."status" in ('waiting', 'pending', 'sent', 'cancelled'));--> statement-breakpoint
DROP SEQUENCE "public"."finance_invoice_number_seq";