ALTER TABLE "order_events" ADD COLUMN "parked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "order_events" ADD COLUMN "park_error" text;--> statement-breakpoint
CREATE INDEX "order_events_parked" ON "order_events" USING btree ("order_id","seq") WHERE "order_events"."parked_at" is not null;