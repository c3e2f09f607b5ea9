-- Per-customer limits: a gift under a limit takes a slot ('ever#1', '2026-11-26#2'); one
-- row per (customer, gift, slot) makes two concurrent exchanges unable to take the same.
-- Gifts without a limit have no slot (NULLs are distinct in the index).
ALTER TABLE gifts ADD COLUMN limit_slot TEXT;
CREATE UNIQUE INDEX gifts_one_per_slot ON gifts (customer_id, gift_code, limit_slot);
-- Stock: one counter per stocked gift, taken in the gift's own transaction with
-- `issued = issued + 1 WHERE issued < stock`, so it is never oversold.
CREATE TABLE gift_stock (
    gift_code TEXT PRIMARY KEY NOT NULL,
    stock BIGINT NOT NULL,
    issued BIGINT NOT NULL
);
