-- Every status change (and bump, cancel, retry) is an event row; announce it so
-- subscriptions on every instance hear of changes made by any instance.
-- The payload is the event id: listeners load the event and its transaction themselves.
CREATE OR REPLACE FUNCTION notify_transaction_event() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('transaction_updated', NEW.id::text);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER transaction_events_notify AFTER INSERT ON transaction_events
  FOR EACH ROW EXECUTE FUNCTION notify_transaction_event();
