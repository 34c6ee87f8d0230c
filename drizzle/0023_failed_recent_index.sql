-- transactions_failed_recent_idx (schema.ts) is built CONCURRENTLY after start-up by src/db/onlineIndexes.ts, not
-- here: migrations run in one transaction, where a plain CREATE INDEX on a table of millions of rows would hold
-- up every write for the whole build. This migration only records it in drizzle's snapshot.
SELECT 1;
