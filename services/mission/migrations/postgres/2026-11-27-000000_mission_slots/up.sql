-- The economy's rules: each capped achievement takes a period slot ('2026-11-26#1',
-- 'once#1'); one row per (customer, mission, slot) makes two concurrent reports unable to
-- take the same slot. Unlimited missions have no slot (NULLs are distinct in the index).
ALTER TABLE missions ADD COLUMN slot TEXT;
-- Who reported it: the subject of the token (player, game server, operator).
ALTER TABLE missions ADD COLUMN reported_by TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX missions_one_per_slot ON missions (customer_id, mission_code, slot);
