-- Every statement that writes outbox rows wakes the relay (LISTEN order_events) at its commit, so writers
-- need no pg_notify round trip of their own; PostgreSQL folds the notifications of one transaction into one.
CREATE OR REPLACE FUNCTION "order_events_wake_relay"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('order_events', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "order_events_wake_relay" AFTER INSERT ON "order_events"
  FOR EACH STATEMENT EXECUTE FUNCTION "order_events_wake_relay"();
