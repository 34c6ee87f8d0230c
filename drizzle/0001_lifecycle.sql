ALTER TABLE "attempts" ADD COLUMN "purpose" text DEFAULT 'REQUEST' NOT NULL;--> statement-breakpoint
ALTER TABLE "transactions" ADD COLUMN "kind" text DEFAULT 'REQUEST' NOT NULL;--> statement-breakpoint
ALTER TABLE "transactions" ADD COLUMN "last_sent_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "attempts_nonce_idx" ON "attempts" USING btree ("chain_id","signer","nonce");--> statement-breakpoint
ALTER TABLE "attempts" ADD CONSTRAINT "attempts_purpose_valid" CHECK ("attempts"."purpose" IN ('REQUEST','CANCEL'));--> statement-breakpoint
ALTER TABLE "transactions" ADD CONSTRAINT "transactions_kind_valid" CHECK ("transactions"."kind" IN ('REQUEST','FILLER'));