-- The balance the sign stage read when it last set a request aside for lack of funds. When the signer later holds
-- more (it was funded), the requests waiting for funds are looked at again at once (sign/signQueued.ts).
ALTER TABLE "signer_nonces" ADD COLUMN "funds_seen_wei" numeric(78, 0);