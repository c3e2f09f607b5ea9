CREATE TABLE rewards (
    id TEXT PRIMARY KEY NOT NULL,
    -- one reward per mission, whatever the redeliveries
    mission_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    points BIGINT NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX rewards_by_customer ON rewards (customer_id, id);
