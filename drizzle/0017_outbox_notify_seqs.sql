-- The relay's wake-up says which rows to publish: the NOTIFY's payload lists the seqs the statement
-- inserted (in order, comma-separated), so the relay looks those rows up by seq instead of scanning
-- order_events_unpublished, whose entries of rows published since the last vacuum it would walk (see
-- 0016). A statement of more rows sends an empty payload, which tells the relay to scan, as does
-- anything else that notifies the channel (republish, unpark). 300 seqs of up to 19 digits and their
-- commas stay under the 8,000 bytes a payload may hold.
CREATE OR REPLACE FUNCTION "order_events_wake_relay"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('order_events', coalesce(
    (SELECT CASE WHEN count(*) <= 300 THEN string_agg(seq::text, ',' ORDER BY seq) END FROM inserted), ''));
  RETURN NULL;
END
$$;
--> statement-breakpoint
DROP TRIGGER "order_events_wake_relay" ON "order_events";
--> statement-breakpoint
CREATE TRIGGER "order_events_wake_relay" AFTER INSERT ON "order_events"
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION "order_events_wake_relay"();
