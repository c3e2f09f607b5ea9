ALTER TABLE wallet_items DROP COLUMN exchange_request_id;
ALTER TABLE wallet_items DROP COLUMN gift_code;
