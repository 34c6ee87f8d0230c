-- Whether the client named the signer (`from`). Rows the service assigned a signer to may be handed to another
-- of the chain's signers while QUEUED, when theirs cannot pay. Existing rows count as pinned: nothing about them
-- is moved that was not before. A constant default adds the column without rewriting the table (Postgres 11+).
ALTER TABLE "transactions" ADD COLUMN "signer_pinned" boolean DEFAULT true NOT NULL;
