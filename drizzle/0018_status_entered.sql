ALTER TABLE "status_counts" ADD COLUMN "entered" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- What is known of the past: at least the rows there are now entered their status.
UPDATE "status_counts" SET "entered" = "count" WHERE "count" > 0;
