-- No foreign key from attempts to transactions, as for events (0006): every attempt is written by a database
-- transaction that holds its transaction's row, and the check locked that row once more per attempt (FOR KEY
-- SHARE, a WAL record each), a third of the time of storing a signed batch. Pruning deletes attempts itself.
ALTER TABLE "attempts" DROP CONSTRAINT IF EXISTS "attempts_transaction_id_transactions_id_fk";
