CREATE TABLE IF NOT EXISTS "ds"."events" ("_lb_load_id" TEXT NOT NULL, "_lb_id" TEXT NOT NULL, "shop" TEXT NOT NULL, "id" BIGINT NOT NULL, "email" TEXT, "created" TIMESTAMPTZ, PRIMARY KEY ("shop", "id"), UNIQUE ("email"));
CREATE INDEX "events__lb_cluster" ON "ds"."events"("created");
ALTER TABLE "ds"."events" CLUSTER ON "events__lb_cluster";
CREATE TABLE IF NOT EXISTS "ds_staging"."events__1234_ab" ("_lb_load_id" TEXT NOT NULL, "_lb_id" TEXT NOT NULL, "shop" TEXT NOT NULL, "id" BIGINT NOT NULL, "email" TEXT, "created" TIMESTAMPTZ);
