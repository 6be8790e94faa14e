INSERT INTO "ds"."events" ("_lb_load_id", "_lb_id", "id", "name") SELECT "_lb_load_id", "_lb_id", "id", "name" FROM "ds_staging"."events";
INSERT INTO "ds"."events__tags" ("_lb_parent_id", "_lb_list_idx", "_lb_root_id", "_lb_id", "value") SELECT "_lb_parent_id", "_lb_list_idx", "_lb_root_id", "_lb_id", "value" FROM "ds_staging"."events__tags";
