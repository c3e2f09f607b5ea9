CREATE TABLE credentials (
    customer_id TEXT PRIMARY KEY NOT NULL,
    -- argon2id PHC string; never the password
    password_hash TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL,
    locked_until TIMESTAMP,
    version BIGINT NOT NULL
);
