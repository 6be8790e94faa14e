TRUNCATE TABLE "ds"."events";
TRUNCATE TABLE "ds"."events__tags";
