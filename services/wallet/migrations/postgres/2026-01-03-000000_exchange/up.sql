ALTER TABLE wallet_items ADD COLUMN gift_code TEXT;
ALTER TABLE wallet_items ADD COLUMN exchange_request_id TEXT;
