-- API keys of the network API (`smsgate web`, issue 13). A key is 32 random bytes shown once
-- when it is created; only its SHA-256 is kept (`hash`), which is enough for a key that cannot
-- be guessed (argon2id is for passwords, which can be). `prefix` (the key's first characters)
-- lets an operator tell keys apart in `smsgate key list`. `allow_ips`: JSON array of CIDRs; empty
-- means any address. A revoked key keeps its row (and its audit trail), with `revoked_at` set.
-- Named 0010: 0009 is reserved for the gateway helper's migration (issue 12); the merge orders
-- them.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    allow_ips TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,   -- Unix ms
    revoked_at INTEGER             -- Unix ms
) STRICT;

CREATE INDEX api_keys_account ON api_keys(account_id);
