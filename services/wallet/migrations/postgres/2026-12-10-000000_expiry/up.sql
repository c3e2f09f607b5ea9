-- Points expire (issue 25): a lot issued for a mission whose catalog says
-- points_expire_after expires at its issue time plus that; NULL never. The expiry scan
-- finds the lots due with points left.
ALTER TABLE wallet_items ADD COLUMN expires_at TIMESTAMP;
CREATE INDEX wallet_items_expiring ON wallet_items (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
