ALTER TABLE "status_count_deltas" ADD COLUMN "entered" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Deltas written before this migration: their rises are entries (the fold read them so until now).
UPDATE "status_count_deltas" SET "entered" = "delta" WHERE "delta" > 0;
--> statement-breakpoint
-- Entries counted per row that changed status, kept apart from the net delta: netted per statement, 3 rows
-- leaving a status and 1 entering it recorded no entry, and a move to another signer (same status) counted as one.
CREATE OR REPLACE FUNCTION status_counts_on_insert() RETURNS trigger AS $$
BEGIN
  INSERT INTO status_count_deltas (chain_id, signer, status, delta, entered)
  SELECT chain_id, signer, status, count(*), count(*) FROM new_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION status_counts_on_update() RETURNS trigger AS $$
BEGIN
  INSERT INTO status_count_deltas (chain_id, signer, status, delta, entered)
  SELECT chain_id, signer, status, sum(delta), sum(entered) FROM (
    SELECT o.chain_id, o.signer, o.status, -1 AS delta, 0 AS entered FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.status IS DISTINCT FROM o.status OR n.chain_id <> o.chain_id OR n.signer <> o.signer
    UNION ALL
    SELECT n.chain_id, n.signer, n.status, 1, CASE WHEN n.status IS DISTINCT FROM o.status THEN 1 ELSE 0 END
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.status IS DISTINCT FROM o.status OR n.chain_id <> o.chain_id OR n.signer <> o.signer
  ) changed GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 OR sum(entered) > 0;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
