-- Points become an account (issue 25): each reward is a lot with what is left of it, each
-- customer a balance kept as an append-only ledger, each spend a row with the lots it
-- drew from. Existing wallets become entries: every reward EARNED, every exchanged one
-- SPENT whole on its gift, so nobody's available points change.
ALTER TABLE wallet_items ADD COLUMN remaining BIGINT NOT NULL DEFAULT 0;
UPDATE wallet_items SET remaining = CASE WHEN status = 'ISSUED' THEN points ELSE 0 END;
CREATE INDEX wallet_items_lots ON wallet_items (customer_id, reward_id) WHERE remaining > 0;

CREATE TABLE wallet_accounts (
    customer_id TEXT PRIMARY KEY NOT NULL,
    balance BIGINT NOT NULL CHECK (balance >= 0),
    entries BIGINT NOT NULL CHECK (entries >= 0)
);

CREATE TABLE wallet_ledger (
    entry_id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    reference TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (customer_id, seq)
);
CREATE INDEX wallet_ledger_by_customer ON wallet_ledger (customer_id, entry_id);
CREATE INDEX wallet_ledger_by_kind ON wallet_ledger (customer_id, kind, entry_id);

CREATE TABLE wallet_spends (
    spend_id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    request_id TEXT,
    gift_code TEXT NOT NULL,
    reward_id TEXT,
    cost BIGINT NOT NULL,
    gift_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    balance_after BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- A request id names one spend per customer; NULL (no request id) repeats freely.
CREATE UNIQUE INDEX wallet_spends_by_request ON wallet_spends (customer_id, request_id);

CREATE TABLE wallet_draws (
    spend_id TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    points BIGINT NOT NULL CHECK (points > 0),
    PRIMARY KEY (spend_id, reward_id)
);

-- One spend at a time per customer, across replicas (taken over when older than its TTL).
CREATE TABLE wallet_spend_leases (
    customer_id TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    taken_at TIMESTAMP NOT NULL
);

-- Entries in time order (UUIDv7 ids: a reward before the gift it paid for), numbered
-- per customer, each with the running balance.
INSERT INTO wallet_ledger (entry_id, customer_id, seq, kind, amount, balance_after, reference, actor, reason, created_at)
SELECT entry_id, customer_id,
       ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY entry_id),
       kind, amount,
       SUM(amount) OVER (PARTITION BY customer_id ORDER BY entry_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
       reference, 'wallet', 'points became an account', CURRENT_TIMESTAMP
FROM (
    SELECT reward_id AS entry_id, customer_id, 'EARNED' AS kind, points AS amount, 'reward:' || reward_id AS reference
    FROM wallet_items
    UNION ALL
    SELECT gift_id, customer_id, 'SPENT', -points, 'gift:' || gift_id
    FROM wallet_items WHERE status = 'EXCHANGED' AND gift_id IS NOT NULL
) moves;

INSERT INTO wallet_accounts (customer_id, balance, entries)
SELECT customer_id, SUM(amount), COUNT(*) FROM wallet_ledger GROUP BY customer_id;

-- Each past exchange is a spend of its reward, whole, under its request id.
INSERT INTO wallet_spends (spend_id, customer_id, request_id, gift_code, reward_id, cost, gift_id, entry_id, balance_after, created_at)
SELECT i.gift_id, i.customer_id, i.exchange_request_id, COALESCE(i.gift_code, ''), i.reward_id, i.points, i.gift_id,
       l.entry_id, l.balance_after, l.created_at
FROM wallet_items i JOIN wallet_ledger l ON l.entry_id = i.gift_id
WHERE i.status = 'EXCHANGED';

INSERT INTO wallet_draws (spend_id, reward_id, points)
SELECT gift_id, reward_id, points FROM wallet_items WHERE status = 'EXCHANGED' AND gift_id IS NOT NULL AND points > 0;

-- Entries are never updated nor deleted.
CREATE FUNCTION wallet_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'wallet_ledger is append-only';
END
$$;
CREATE TRIGGER wallet_ledger_append_only BEFORE UPDATE OR DELETE ON wallet_ledger
FOR EACH ROW EXECUTE FUNCTION wallet_ledger_append_only();
