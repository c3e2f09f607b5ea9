-- Events waiting to be published, in commit order (transactional outbox).
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    event_type TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    causation_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    traceparent TEXT,
    occurred_at TIMESTAMP NOT NULL,
    payload BYTEA NOT NULL,
    -- A relay's lease on the row while it publishes it.
    claimed_until TIMESTAMP
);

-- Events already handled by a consumer (idempotent consumers).
CREATE TABLE inbox (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    handled_at TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
