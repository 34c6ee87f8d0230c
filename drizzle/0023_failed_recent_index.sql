-- transactions_failed_recent_idx (schema.ts). On a table that already holds rows it is built CONCURRENTLY after
-- start-up by src/db/onlineIndexes.ts, not here: migrations run in one transaction, where a plain CREATE INDEX on a
-- table of millions of rows would hold up every write for the whole build. On a small table (a new database) it is
-- built here at once: a concurrent build in the background of a new service deadlocked with a LOCK TABLE.
DO $$
BEGIN
  IF pg_relation_size('transactions') < 64 * 1024 * 1024 THEN
    CREATE INDEX IF NOT EXISTS "transactions_failed_recent_idx" ON "transactions" USING btree ("chain_id","signer","final_at") WHERE "transactions"."status" = 'FAILED';
  END IF;
END $$;
