-- Roles are stored per account (never granted by name); the per-account lock-out gives
-- way to throttling per (account, address) and per address (login_throttle).
ALTER TABLE credentials ADD COLUMN role TEXT NOT NULL DEFAULT 'player';
ALTER TABLE credentials DROP COLUMN failed_attempts;
ALTER TABLE credentials DROP COLUMN locked_until;

CREATE TABLE service_accounts (
    client_id TEXT PRIMARY KEY NOT NULL,
    -- argon2id PHC string; never the secret
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Tokens of `subject` with an `iat` (seconds) before `revoked_before` are refused.
CREATE TABLE revocations (
    subject TEXT PRIMARY KEY NOT NULL,
    revoked_before BIGINT NOT NULL
);
CREATE INDEX revocations_by_time ON revocations (revoked_before);

-- Who did what to whom, when.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject, at);

-- Failed-login counters: `p|<address>|<account>` and `a|<address>`.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    since TIMESTAMP NOT NULL,
    blocked_until TIMESTAMP,
    version BIGINT NOT NULL
);
CREATE INDEX login_throttle_by_time ON login_throttle (since);
