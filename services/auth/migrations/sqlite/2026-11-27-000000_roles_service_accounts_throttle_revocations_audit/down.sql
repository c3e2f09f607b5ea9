DROP TABLE login_throttle;
DROP TABLE audit_log;
DROP TABLE revocations;
DROP TABLE service_accounts;
ALTER TABLE credentials ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN locked_until TIMESTAMP;
ALTER TABLE credentials DROP COLUMN role;
