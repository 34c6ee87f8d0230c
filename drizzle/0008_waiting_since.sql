-- While QUEUED and set aside by the sign stage (no funds yet, an estimate refused in unknown words): since when.
-- The chain's patience for that reason runs from it (config chains[].patience); NULL otherwise. No default, no rewrite.
ALTER TABLE "transactions" ADD COLUMN "waiting_since" timestamp with time zone;