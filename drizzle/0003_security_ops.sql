CREATE TABLE "api_keys" (
	"name" text PRIMARY KEY NOT NULL,
	"role" text NOT NULL,
	"key_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_role_valid" CHECK ("api_keys"."role" IN ('reader','submitter','admin'))
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"subject" text,
	"detail" jsonb
);
--> statement-breakpoint
CREATE TABLE "webhook_outbox" (
	"event_id" bigint PRIMARY KEY NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "transactions_key_inflight_idx" ON "transactions" USING btree ("api_key_name") WHERE "transactions"."status" IN ('QUEUED', 'PENDING', 'INCLUDED');--> statement-breakpoint
CREATE INDEX "transactions_final_at_idx" ON "transactions" USING btree ("final_at") WHERE "transactions"."final_at" IS NOT NULL;--> statement-breakpoint
-- Webhooks: every status change (not bumps, which keep the status) goes to the outbox with its event.
-- One statement-level trigger: a batch of events is one INSERT ... SELECT, not one per row.
CREATE OR REPLACE FUNCTION webhook_outbox_add() RETURNS trigger AS $$
BEGIN
  INSERT INTO webhook_outbox (event_id) SELECT id FROM new_events WHERE from_status IS DISTINCT FROM to_status;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER transaction_events_webhook_outbox AFTER INSERT ON transaction_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_outbox_add();
