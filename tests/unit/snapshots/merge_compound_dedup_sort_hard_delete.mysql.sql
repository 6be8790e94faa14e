CREATE INDEX IF NOT EXISTS `orders__lb_id_lookup` ON `ds`.`orders`(`_LB_ID`(64));
CREATE INDEX IF NOT EXISTS `orders__lb_key_lookup` ON `ds_staging`.`orders`(`shop`, `id`);
DELETE FROM `ds`.`orders` WHERE (`shop`, `id`) IN (SELECT `shop`, `id` FROM `ds_staging`.`orders`);
INSERT INTO `ds`.`orders` (`_lb_load_id`, `_lb_id`, `shop`, `id`, `updated_at`, `deleted`) SELECT `_lb_load_id`, `_lb_id`, `shop`, `id`, `updated_at`, `deleted` FROM (SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY `shop`, `id` ORDER BY `updated_at` DESC, `_lb_id` DESC) AS `_lb_dedup_rank` FROM `ds_staging`.`orders`) AS _lb_ranked WHERE `_lb_dedup_rank` = 1 AND (`deleted` IS NULL OR `deleted` = FALSE)) AS _lb_kept;
