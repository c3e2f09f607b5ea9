ALTER TABLE login_throttle DROP COLUMN known_until;
