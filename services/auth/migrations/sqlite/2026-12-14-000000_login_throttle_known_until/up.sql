-- An (account, address) that logged in is its owner's for a while (known_until): the
-- address's own slow-down does not apply to it (issue 24: a carrier NAT's other users).
ALTER TABLE login_throttle ADD COLUMN known_until TIMESTAMP;
