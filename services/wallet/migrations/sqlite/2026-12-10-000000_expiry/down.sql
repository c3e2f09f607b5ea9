DROP INDEX wallet_items_expiring;
ALTER TABLE wallet_items DROP COLUMN expires_at;
