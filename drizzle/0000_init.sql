CREATE TABLE "attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"transaction_id" uuid NOT NULL,
	"execution" integer NOT NULL,
	"chain_id" integer NOT NULL,
	"signer" text NOT NULL,
	"nonce" bigint NOT NULL,
	"hash" text NOT NULL,
	"raw" text NOT NULL,
	"gas_limit" numeric(78, 0) NOT NULL,
	"max_fee_per_gas" numeric(78, 0),
	"max_priority_fee_per_gas" numeric(78, 0),
	"gas_price" numeric(78, 0),
	"status" text DEFAULT 'SIGNED' NOT NULL,
	"providers" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	CONSTRAINT "attempts_status_valid" CHECK ("attempts"."status" IN ('SIGNED','SENT','MINED','REPLACED','REJECTED'))
);
--> statement-breakpoint
CREATE TABLE "chain_cursors" (
	"chain_id" integer PRIMARY KEY NOT NULL,
	"block_number" bigint NOT NULL,
	"block_hash" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "signer_nonces" (
	"chain_id" integer NOT NULL,
	"signer" text NOT NULL,
	"next_nonce" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "signer_nonces_chain_id_signer_pk" PRIMARY KEY("chain_id","signer"),
	CONSTRAINT "signer_nonces_nonneg" CHECK ("signer_nonces"."next_nonce" >= 0)
);
--> statement-breakpoint
CREATE TABLE "transaction_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"transaction_id" uuid NOT NULL,
	"from_status" text,
	"to_status" text NOT NULL,
	"actor" text DEFAULT 'system' NOT NULL,
	"detail" jsonb,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "transactions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "transactions_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"chain_id" integer NOT NULL,
	"signer" text NOT NULL,
	"to" text,
	"data" text DEFAULT '0x' NOT NULL,
	"value" numeric(78, 0) DEFAULT '0' NOT NULL,
	"gas_limit" numeric(78, 0),
	"status" text DEFAULT 'QUEUED' NOT NULL,
	"nonce" bigint,
	"execution" integer DEFAULT 1 NOT NULL,
	"error_code" text,
	"error_message" text,
	"api_key_name" text DEFAULT '' NOT NULL,
	"idempotency_key" text,
	"valid_until" timestamp with time zone,
	"at_fee_cap" timestamp with time zone,
	"mined_hash" text,
	"block_number" bigint,
	"block_hash" text,
	"receipt_status" text,
	"gas_used" numeric(78, 0),
	"effective_gas_price" numeric(78, 0),
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"first_sent_at" timestamp with time zone,
	"included_at" timestamp with time zone,
	"final_at" timestamp with time zone,
	CONSTRAINT "transactions_status_valid" CHECK ("transactions"."status" IN ('QUEUED','PENDING','INCLUDED','CONFIRMED','REVERTED','FAILED','CANCELLED')),
	CONSTRAINT "transactions_status_nonce" CHECK (("transactions"."status" IN ('QUEUED','FAILED') AND "transactions"."nonce" IS NULL) OR ("transactions"."status" IN ('PENDING','INCLUDED','CONFIRMED','REVERTED','CANCELLED') AND "transactions"."nonce" IS NOT NULL)),
	CONSTRAINT "transactions_final_at" CHECK (("transactions"."status" IN ('CONFIRMED','REVERTED','FAILED','CANCELLED')) = ("transactions"."final_at" IS NOT NULL)),
	CONSTRAINT "transactions_included_block" CHECK ("transactions"."status" NOT IN ('INCLUDED','CONFIRMED','REVERTED','CANCELLED') OR "transactions"."block_number" IS NOT NULL),
	CONSTRAINT "transactions_value_nonneg" CHECK ("transactions"."value" >= 0)
);
--> statement-breakpoint
ALTER TABLE "attempts" ADD CONSTRAINT "attempts_transaction_id_transactions_id_fk" FOREIGN KEY ("transaction_id") REFERENCES "public"."transactions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "transaction_events" ADD CONSTRAINT "transaction_events_transaction_id_transactions_id_fk" FOREIGN KEY ("transaction_id") REFERENCES "public"."transactions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "attempts_hash_key" ON "attempts" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "attempts_transaction_idx" ON "attempts" USING btree ("transaction_id","id");--> statement-breakpoint
CREATE INDEX "attempts_unsent_idx" ON "attempts" USING btree ("chain_id","signer") WHERE "attempts"."sent_at" IS NULL;--> statement-breakpoint
CREATE INDEX "transaction_events_tx_idx" ON "transaction_events" USING btree ("transaction_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "transactions_seq_key" ON "transactions" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "transactions_signer_nonce_key" ON "transactions" USING btree ("chain_id","signer","nonce") WHERE "transactions"."nonce" IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "transactions_idempotency_key" ON "transactions" USING btree ("api_key_name","idempotency_key") WHERE "transactions"."idempotency_key" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "transactions_queued_idx" ON "transactions" USING btree ("chain_id","signer","seq") WHERE "transactions"."status" = 'QUEUED';--> statement-breakpoint
CREATE INDEX "transactions_inflight_idx" ON "transactions" USING btree ("chain_id","status") WHERE "transactions"."status" IN ('PENDING', 'INCLUDED');--> statement-breakpoint
CREATE INDEX "transactions_status_seq_idx" ON "transactions" USING btree ("status","seq");--> statement-breakpoint
CREATE INDEX "transactions_chain_seq_idx" ON "transactions" USING btree ("chain_id","seq");--> statement-breakpoint
CREATE INDEX "transactions_signer_seq_idx" ON "transactions" USING btree ("signer","seq");