DROP TABLE wallet_expiry_notices;
