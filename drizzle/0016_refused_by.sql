-- The remote signer that refused a request's current execution: such a request never moves to another signer
-- (the refusal may be the operator's policy for that key), whatever notes later overwrite its error code.
ALTER TABLE "transactions" ADD COLUMN "refused_by" text;