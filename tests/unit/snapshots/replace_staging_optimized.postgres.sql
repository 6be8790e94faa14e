DROP TABLE IF EXISTS "ds"."events";
ALTER TABLE "ds_staging"."events" SET SCHEMA "ds";
DROP TABLE IF EXISTS "ds"."events__tags";
ALTER TABLE "ds_staging"."events__tags" SET SCHEMA "ds";
