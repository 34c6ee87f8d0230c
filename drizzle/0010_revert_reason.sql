-- Why a mined transaction reverted (status 0), from replaying its call at its block: Error(string)'s message, a panic or a custom
-- error's selector. NULL when not reverted or not found; no rewrite.
ALTER TABLE "transactions" ADD COLUMN "revert_reason" text;