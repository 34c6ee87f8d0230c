-- When each transaction entered its status. No default, no rewrite: null until its first change, when created_at
-- is when it entered QUEUED. txb_oldest_unfinished_seconds counted from created_at, so a FAILED row retried 20
-- days after it was accepted read 20 days QUEUED, and a row that waited an hour for funds an hour PENDING.
ALTER TABLE "transactions" ADD COLUMN "status_at" timestamp with time zone;
--> statement-breakpoint
-- Set by the database on each change of status, whichever statement makes it: none can forget it.
CREATE FUNCTION transactions_set_status_at() RETURNS trigger AS $$
BEGIN
  NEW.status_at := now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER transactions_status_at BEFORE UPDATE OF status ON transactions
  FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION transactions_set_status_at();
--> statement-breakpoint
-- Unfinished rows (few) get the time of the event that put them in their status (not a bump's, which keeps it).
UPDATE transactions t SET status_at = e.at
FROM (
  SELECT DISTINCT ON (e.transaction_id) e.transaction_id, e.at
  FROM transaction_events e JOIN transactions u ON u.id = e.transaction_id AND u.status = e.to_status
    AND e.from_status IS DISTINCT FROM e.to_status
  WHERE u.status IN ('QUEUED', 'PENDING', 'INCLUDED')
  ORDER BY e.transaction_id, e.id DESC
) e
WHERE t.id = e.transaction_id AND t.status IN ('QUEUED', 'PENDING', 'INCLUDED');
