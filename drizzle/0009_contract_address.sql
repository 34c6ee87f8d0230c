-- The receipt's contractAddress (checksummed): what a deployment, a transaction without `to`, created. NULL otherwise; no rewrite.
ALTER TABLE "transactions" ADD COLUMN "contract_address" text;