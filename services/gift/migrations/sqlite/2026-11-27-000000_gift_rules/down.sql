DROP TABLE gift_stock;
DROP INDEX gifts_one_per_slot;
ALTER TABLE gifts DROP COLUMN limit_slot;
