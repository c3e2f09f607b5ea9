CREATE TABLE wallet_items (
    reward_id TEXT PRIMARY KEY NOT NULL,
    mission_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    status TEXT NOT NULL,
    gift_id TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX wallet_items_by_customer ON wallet_items (customer_id, reward_id);
