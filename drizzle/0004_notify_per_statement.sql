-- One NOTIFY per statement instead of one per row: a batch of accepts, a signed batch or a
-- block's receipts insert hundreds of events at once, and every NOTIFY takes a global lock
-- at commit. The payload lists event ids (chunked to stay under the 8000-byte limit).
DROP TRIGGER IF EXISTS transaction_events_notify ON transaction_events;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION notify_transaction_events() RETURNS trigger AS $$
DECLARE
  chunk text;
BEGIN
  FOR chunk IN
    SELECT string_agg(id::text, ',' ORDER BY id) FROM (
      SELECT id, (row_number() OVER (ORDER BY id) - 1) / 300 AS part FROM new_events
    ) numbered GROUP BY part ORDER BY part
  LOOP
    PERFORM pg_notify('transaction_updated', chunk);
  END LOOP;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER transaction_events_notify AFTER INSERT ON transaction_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION notify_transaction_events();
