-- Dead letters replayed before settled_at existed: the old code counted a replay as the end of them.
UPDATE "dead_letters" SET "settled_at" = "replayed_at" WHERE "replayed_at" IS NOT NULL AND "settled_at" IS NULL;
