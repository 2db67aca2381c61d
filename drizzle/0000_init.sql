CREATE SEQUENCE "public"."finance_invoice_number_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "products" (
	"sku" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"price_amount" integer NOT NULL,
	"currency" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "products_kind" CHECK ("products"."kind" in ('physical', 'travel', 'digital', 'subscription')),
	CONSTRAINT "products_price" CHECK ("products"."price_amount" >= 0)
);
--> statement-breakpoint
CREATE TABLE "finance_invoices" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"state" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"invoice_number" text,
	"amount" integer NOT NULL,
	"currency" text NOT NULL,
	"payment_reference" text,
	CONSTRAINT "finance_invoices_invoice_number_unique" UNIQUE("invoice_number"),
	CONSTRAINT "finance_invoices_state" CHECK ("finance_invoices"."state" in ('pending', 'issued', 'paid', 'refunded'))
);
--> statement-breakpoint
CREATE TABLE "dead_letters" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"consumer" text NOT NULL,
	"event_id" uuid NOT NULL,
	"event_type" text NOT NULL,
	"order_id" uuid NOT NULL,
	"event" jsonb NOT NULL,
	"error" text NOT NULL,
	"attempts" integer NOT NULL,
	"failed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"replayed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "order_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigserial NOT NULL,
	"order_id" uuid NOT NULL,
	"type" text NOT NULL,
	"payload" jsonb NOT NULL,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "processed_events" (
	"consumer" text NOT NULL,
	"event_id" uuid NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "processed_events_consumer_event_id_pk" PRIMARY KEY("consumer","event_id")
);
--> statement-breakpoint
CREATE TABLE "module_notes" (
	"module" text NOT NULL,
	"order_id" uuid NOT NULL,
	"note" text NOT NULL,
	"noted_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "order_lines" (
	"order_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"sku" text NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"quantity" integer NOT NULL,
	"unit_amount" integer NOT NULL,
	"currency" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "partner_reports" (
	"order_id" uuid NOT NULL,
	"module" text NOT NULL,
	"idempotency_key" text NOT NULL,
	"state" text NOT NULL,
	"event_id" uuid NOT NULL,
	"reported_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sales_orders" (
	"id" uuid PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"customer_id" text NOT NULL,
	"contact_email" text NOT NULL,
	"total_amount" integer NOT NULL,
	"currency" text NOT NULL,
	"required_modules" text[] NOT NULL,
	"involved_modules" text[] NOT NULL,
	"idempotency_key" text NOT NULL,
	"request_hash" text NOT NULL,
	"placed_event_id" uuid NOT NULL,
	"payment_reference" text,
	"confirmed_event_id" uuid,
	"cancellation_reason" text,
	"cancelled_event_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sales_orders_status" CHECK ("sales_orders"."status" in ('pending', 'confirmed', 'fulfilling', 'completed', 'cancelled'))
);
--> statement-breakpoint
CREATE TABLE "logistics_shipments" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"state" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"pick_list" jsonb NOT NULL,
	CONSTRAINT "logistics_shipments_state" CHECK ("logistics_shipments"."state" in ('waiting', 'picked', 'packed', 'shipped', 'delivered', 'returned'))
);
--> statement-breakpoint
CREATE TABLE "subscription_contracts" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"state" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"plans" jsonb NOT NULL,
	CONSTRAINT "subscription_contracts_state" CHECK ("subscription_contracts"."state" in ('pending', 'active', 'terminated'))
);
--> statement-breakpoint
CREATE TABLE "travelium_bookings" (
	"order_id" uuid PRIMARY KEY NOT NULL,
	"state" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"allotment_reference" text NOT NULL,
	CONSTRAINT "travelium_bookings_state" CHECK ("travelium_bookings"."state" in ('pending', 'reserved', 'confirmed', 'travelled', 'cancelled'))
);
--> statement-breakpoint
ALTER TABLE "order_lines" ADD CONSTRAINT "order_lines_order_id_sales_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."sales_orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "dead_letters_consumer_event" ON "dead_letters" USING btree ("consumer","event_id");--> statement-breakpoint
CREATE INDEX "order_events_order_seq" ON "order_events" USING btree ("order_id","seq");--> statement-breakpoint
CREATE INDEX "order_events_unpublished" ON "order_events" USING btree ("seq") WHERE "order_events"."published_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "module_notes_module_order_note" ON "module_notes" USING btree ("module","order_id","note");--> statement-breakpoint
CREATE UNIQUE INDEX "order_lines_order_position" ON "order_lines" USING btree ("order_id","position");--> statement-breakpoint
CREATE UNIQUE INDEX "partner_reports_order_module_key" ON "partner_reports" USING btree ("order_id","module","idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "sales_orders_customer_idempotency" ON "sales_orders" USING btree ("customer_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "sales_orders_customer_created" ON "sales_orders" USING btree ("customer_id","created_at");--> statement-breakpoint
CREATE INDEX "sales_orders_created" ON "sales_orders" USING btree ("created_at");