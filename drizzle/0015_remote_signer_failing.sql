-- Since when a remote signer (Web3Signer, Clef) has failed to sign, and its last answer: the signers query and the
-- dashboard name it, whether its requests wait QUEUED or PENDING (a bump it cannot sign). Cleared by a signature.
ALTER TABLE "signer_nonces" ADD COLUMN "remote_failing_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "signer_nonces" ADD COLUMN "remote_error" text;