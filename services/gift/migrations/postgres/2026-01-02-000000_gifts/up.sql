CREATE TABLE gifts (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    -- one gift per reward, whatever the retries or races
    reward_id TEXT NOT NULL UNIQUE,
    mission_id TEXT NOT NULL,
    gift_code TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    version BIGINT NOT NULL
);
CREATE INDEX gifts_by_customer ON gifts (customer_id, id);
