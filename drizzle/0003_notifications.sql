CREATE TABLE "notifications" (
	"order_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"status" text NOT NULL,
	"heard" text[] NOT NULL,
	"message_id" text NOT NULL,
	"recipient" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"claimed_by" text,
	"claimed_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	CONSTRAINT "notifications_order_kind" PRIMARY KEY("order_id","kind"),
	CONSTRAINT "notifications_kind" CHECK ("notifications"."kind" in ('confirmed', 'completed')),
	CONSTRAINT "notifications_status" CHECK ("notifications"."status" in ('waiting', 'pending', 'sent'))
);
--> statement-breakpoint
CREATE INDEX "notifications_due" ON "notifications" USING btree ("next_attempt_at") WHERE "notifications"."status" = 'pending';