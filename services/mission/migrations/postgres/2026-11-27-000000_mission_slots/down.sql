DROP INDEX missions_one_per_slot;
ALTER TABLE missions DROP COLUMN reported_by;
ALTER TABLE missions DROP COLUMN slot;
