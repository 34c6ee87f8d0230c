CREATE TABLE "webhook_statuses" (
	"to_status" text PRIMARY KEY NOT NULL
);
--> statement-breakpoint
DROP INDEX "attempts_unsent_idx";--> statement-breakpoint
-- Only status changes some webhook wants go to the outbox (webhook_statuses is set at start-up from
-- the config): without webhooks, no outbox row is written and none has to be deleted again.
CREATE OR REPLACE FUNCTION webhook_outbox_add() RETURNS trigger AS $$
BEGIN
  INSERT INTO webhook_outbox (event_id)
  SELECT e.id FROM new_events e JOIN webhook_statuses w ON w.to_status = e.to_status
  WHERE e.from_status IS DISTINCT FROM e.to_status;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
-- Room on each page for the next version of a row: an update that changes no indexed column
-- (a broadcast's sent times, an attempt's provider answers) can then stay on the page and skip
-- every index (a HOT update). Applies to pages written from now on.
ALTER TABLE "transactions" SET (fillfactor = 70);
--> statement-breakpoint
ALTER TABLE "attempts" SET (fillfactor = 70);
