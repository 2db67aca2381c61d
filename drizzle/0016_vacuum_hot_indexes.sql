-- The relay's scan finds unpublished events through order_events_unpublished (WHERE published_at IS
-- NULL), the sender its due emails through notifications_due (WHERE status = 'pending'). Marking a row
-- published or sent changes the predicate's column, so the row's old entry stays in the partial index
-- until a vacuum removes it, and every scan walks those entries and the heap rows behind them: one claim
-- of two events took 5-7 ms behind 20,000 of them, 52-125 ms behind 180,000, 3 ms after a vacuum. With
-- PostgreSQL's defaults a table is vacuumed once a fifth of it is dead, 200,000 rows of an outbox of
-- 1,000,000 events. Vacuumed after a fixed number of dead rows instead, whatever the table's size, a
-- scan walks at most that many plus what accumulates in autovacuum_naptime (1 min by default).
-- index_cleanup on: on a large table PostgreSQL would otherwise leave the indexes alone when few of its
-- pages hold dead rows, and the entries the scans walk are the very ones that would stay.
ALTER TABLE "order_events" SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, vacuum_index_cleanup = on);
--> statement-breakpoint
ALTER TABLE "notifications" SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000, vacuum_index_cleanup = on);
