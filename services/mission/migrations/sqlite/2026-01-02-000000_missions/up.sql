CREATE TABLE missions (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    mission_code TEXT NOT NULL,
    status TEXT NOT NULL,
    reward_id TEXT,
    reward_points BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    achieved_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL,
    UNIQUE (customer_id, request_id)
);
CREATE INDEX missions_by_customer ON missions (customer_id, id);
