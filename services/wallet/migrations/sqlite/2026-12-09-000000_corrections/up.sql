-- An admin's corrections (issue 25): refunds of gifts and adjustments of balances, each
-- with its entry, who made it and why. A gift is refunded once; a request id names one
-- correction (NULLs, no request id, repeat freely).
CREATE TABLE wallet_corrections (
    correction_id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    gift_id TEXT UNIQUE,
    request_id TEXT UNIQUE,
    amount BIGINT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    balance_after BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- The lots a correction's points went to (a refund, a credit) or came from (a debit).
CREATE TABLE wallet_correction_lots (
    correction_id TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    points BIGINT NOT NULL CHECK (points > 0),
    PRIMARY KEY (correction_id, reward_id)
);

-- A refund finds the spend that paid for its gift.
CREATE INDEX wallet_spends_by_gift ON wallet_spends (gift_id);
