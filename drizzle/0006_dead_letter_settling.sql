CREATE TABLE "listener_failures" (
	"consumer" text NOT NULL,
	"event_id" uuid NOT NULL,
	"failures" integer NOT NULL,
	"last_error" text NOT NULL,
	"last_failed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "listener_failures_consumer_event_id_pk" PRIMARY KEY("consumer","event_id")
);
--> statement-breakpoint
ALTER TABLE "dead_letters" ADD COLUMN "settled_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "dead_letters_order" ON "dead_letters" USING btree ("order_id");--> statement-breakpoint
CREATE INDEX "dead_letters_waiting" ON "dead_letters" USING btree ("id") WHERE "dead_letters"."settled_at" is null;