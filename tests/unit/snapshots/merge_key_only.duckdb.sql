DELETE FROM "ds"."days" WHERE "day" IN (SELECT "day" FROM "ds_staging"."days");
INSERT INTO "ds"."days" ("_lb_load_id", "_lb_id", "day", "v") SELECT "_lb_load_id", "_lb_id", "day", "v" FROM "ds_staging"."days";
