ALTER TABLE "order_events" ADD COLUMN "actor" text;--> statement-breakpoint
CREATE INDEX "sales_orders_contact_email" ON "sales_orders" USING btree ("contact_email");