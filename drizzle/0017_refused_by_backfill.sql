-- Requests refused by their remote signer before 0016 (refused_by did not exist yet): SIGNER_REFUSED, or
-- SIGNER_UNAVAILABLE in the words of a refusal (sign/signQueued.ts, REFUSAL_WORDS). Without this, one whose first
-- look after the upgrade met an outage of that signer lost its refusal words and was moved to another signer.
UPDATE "transactions" SET "refused_by" = "signer"
WHERE "status" = 'QUEUED' AND "refused_by" IS NULL
  AND ("error_code" = 'SIGNER_REFUSED'
       OR ("error_code" = 'SIGNER_UNAVAILABLE' AND "error_message" ~ '^signer "[^"]*": eth_signTransaction at \S+ refused: '));
