DELETE FROM "ds"."events";
DELETE FROM "ds"."events__tags";
