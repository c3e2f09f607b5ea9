DROP FUNCTION IF EXISTS wallet_ledger_append_only() CASCADE;
DROP TABLE wallet_spend_leases;
DROP TABLE wallet_draws;
DROP TABLE wallet_spends;
DROP TABLE wallet_ledger;
DROP TABLE wallet_accounts;
DROP INDEX wallet_items_lots;
ALTER TABLE wallet_items DROP COLUMN remaining;
