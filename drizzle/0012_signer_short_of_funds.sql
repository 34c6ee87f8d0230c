-- When the sign stage last found the signer unable to pay for a request: the accept path gives requests that name
-- no signer to the chain's other signers meanwhile (accept/signerLoad.ts). NULL: not short, as far as it knows.
ALTER TABLE "signer_nonces" ADD COLUMN "short_of_funds_at" timestamp with time zone;
