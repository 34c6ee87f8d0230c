CREATE TABLE "webhook_registry" (
	"instance_id" uuid NOT NULL,
	"name" text NOT NULL,
	"events" text[],
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_registry_instance_id_name_pk" PRIMARY KEY("instance_id","name")
);
