CREATE INDEX IF NOT EXISTS `days__lb_id_lookup` ON `ds`.`days`(`_LB_ID`(64));
CREATE INDEX IF NOT EXISTS `days__lb_merge_key_lookup` ON `ds_staging`.`days`(`day`);
DELETE FROM `ds`.`days` WHERE `day` IN (SELECT `day` FROM `ds_staging`.`days`);
INSERT INTO `ds`.`days` (`_lb_load_id`, `_lb_id`, `day`, `v`) SELECT `_lb_load_id`, `_lb_id`, `day`, `v` FROM `ds_staging`.`days`;
