-- Notices of points about to expire (EXPIRY_NOTICE_DAYS): one per customer and expiry
-- date (UTC), written with its PointsExpiring event; the key makes it once across
-- replicas.
CREATE TABLE wallet_expiry_notices (
    customer_id TEXT NOT NULL,
    expiry_date TEXT NOT NULL,
    points BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (customer_id, expiry_date)
);
