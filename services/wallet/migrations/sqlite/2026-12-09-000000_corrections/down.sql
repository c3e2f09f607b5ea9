DROP INDEX wallet_spends_by_gift;
DROP TABLE wallet_correction_lots;
DROP TABLE wallet_corrections;
