-- A request id names one exchange per customer: two concurrent exchanges of different
-- rewards under the same id cannot both commit. NULL (no request id) repeats freely.
CREATE UNIQUE INDEX wallet_items_by_exchange_request ON wallet_items (customer_id, exchange_request_id);
