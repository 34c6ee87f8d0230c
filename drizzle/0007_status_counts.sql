CREATE TABLE "status_count_deltas" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"chain_id" integer NOT NULL,
	"signer" text NOT NULL,
	"status" text NOT NULL,
	"delta" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "status_counts" (
	"chain_id" integer NOT NULL,
	"signer" text NOT NULL,
	"status" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "status_counts_chain_id_signer_status_pk" PRIMARY KEY("chain_id","signer","status")
);
--> statement-breakpoint
-- Per-status counts kept by statement triggers (one INSERT per statement, aggregated), so the dashboard's
-- counts never read the whole transactions table. Deltas are insert-only: writers never wait on each other.
CREATE FUNCTION status_counts_on_insert() RETURNS trigger AS $$
BEGIN
  INSERT INTO status_count_deltas (chain_id, signer, status, delta)
  SELECT chain_id, signer, status, count(*) FROM new_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE FUNCTION status_counts_on_update() RETURNS trigger AS $$
BEGIN
  INSERT INTO status_count_deltas (chain_id, signer, status, delta)
  SELECT chain_id, signer, status, sum(delta) FROM (
    SELECT o.chain_id, o.signer, o.status, -1 AS delta FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.status IS DISTINCT FROM o.status OR n.chain_id <> o.chain_id OR n.signer <> o.signer
    UNION ALL
    SELECT n.chain_id, n.signer, n.status, 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE n.status IS DISTINCT FROM o.status OR n.chain_id <> o.chain_id OR n.signer <> o.signer
  ) changed GROUP BY 1, 2, 3 HAVING sum(delta) <> 0;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE FUNCTION status_counts_on_delete() RETURNS trigger AS $$
BEGIN
  INSERT INTO status_count_deltas (chain_id, signer, status, delta)
  SELECT chain_id, signer, status, -count(*) FROM old_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER transactions_status_counts_insert AFTER INSERT ON transactions
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION status_counts_on_insert();
--> statement-breakpoint
CREATE TRIGGER transactions_status_counts_update AFTER UPDATE ON transactions
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION status_counts_on_update();
--> statement-breakpoint
CREATE TRIGGER transactions_status_counts_delete AFTER DELETE ON transactions
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION status_counts_on_delete();
--> statement-breakpoint
CREATE FUNCTION status_counts_on_truncate() RETURNS trigger AS $$
BEGIN
  DELETE FROM status_count_deltas;
  DELETE FROM status_counts;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER transactions_status_counts_truncate AFTER TRUNCATE ON transactions
  FOR EACH STATEMENT EXECUTE FUNCTION status_counts_on_truncate();
--> statement-breakpoint
-- The triggers' lock on transactions (held until the migration commits) keeps writers out while the
-- existing rows are counted, so no change falls between the count and the triggers. This relies on the
-- migration running at READ COMMITTED (Postgres' default), where this statement takes a new snapshot
-- after the lock was granted. Writes to transactions wait while the table is counted (about a second
-- per million rows).
INSERT INTO status_counts (chain_id, signer, status, count)
SELECT chain_id, signer, status, count(*) FROM transactions GROUP BY 1, 2, 3;
