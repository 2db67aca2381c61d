-- A row that turns pending, or a confirmation marked sent (the completion email of its order may go now),
-- wakes the senders (LISTEN notifications) at its commit: writers need no pg_notify round trip of their own.
CREATE OR REPLACE FUNCTION "notifications_wake_sender"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('notifications', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "notifications_wake_sender" AFTER INSERT OR UPDATE OF "status" ON "notifications"
  FOR EACH ROW WHEN (NEW."status" = 'pending' OR (NEW."kind" = 'confirmed' AND NEW."status" = 'sent'))
  EXECUTE FUNCTION "notifications_wake_sender"();
