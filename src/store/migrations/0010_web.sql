-- API keys of the network API (`smsgate web`, issue 13). A key is 32 random bytes shown once
-- when it is created; only its SHA-256 is kept (`hash`), which is enough for a key that cannot
-- be guessed (argon2id is for passwords, which can be). `prefix` (the key's first characters)
-- lets an operator tell keys apart in `smsgate key list`. `allow_ips`: JSON array of CIDRs; empty
-- means any address. A revoked key keeps its row (and its audit trail), with `revoked_at` set.
-- Named 0010: 0009 is reserved for the gateway helper's migration (issue 12); the merge orders
-- them. Every statement is IF NOT EXISTS, so a database whose version was set back by hand
-- (tests/contract_numbers.rs does) migrates again without error.
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    allow_ips TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,   -- Unix ms
    revoked_at INTEGER             -- Unix ms
) STRICT;

CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys(account_id);

-- Webhooks (pushed reports): one URL and HMAC secret per account (the secret is kept in clear:
-- the front end signs with it), and the durable outbox of events for it. An event is written in
-- the transaction of the change it reports, so none is lost to a restart of either process:
-- a message reaching a final state (the trigger below, on every connection, built-in functions
-- only), an inbound reply attributed to an account (store::webhooks::enqueue_inbound, in the
-- inbound transaction). The front end takes due events over the socket and acknowledges each
-- after the customer's 2xx; a failure sets the next attempt (back-off); after 24 h an event is
-- given up (kept, with its last error).
CREATE TABLE IF NOT EXISTS webhooks (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL    -- Unix ms
) STRICT;

CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,            -- 'message_state' | 'inbound'
    message_id INTEGER,            -- events of one message go out in order
    body TEXT NOT NULL,            -- the JSON POSTed
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    given_up_at INTEGER,
    last_error TEXT
) STRICT;

CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox(next_attempt_at)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_outbox_message ON webhook_outbox(message_id) WHERE message_id IS NOT NULL;

CREATE TRIGGER IF NOT EXISTS webhook_message_state AFTER UPDATE OF state ON messages
WHEN NEW.state <> OLD.state AND NEW.state IN ('delivered', 'failed', 'expired')
BEGIN
    INSERT INTO webhook_outbox (account_id, kind, message_id, body, created_at, next_attempt_at)
    SELECT w.account_id, 'message_state', NEW.id,
           json_object('event', 'message_state', 'message_id', NEW.id, 'to', NEW.recipient,
                       'state', NEW.state, 'error', NEW.last_error,
                       'at', CAST(unixepoch('subsec') * 1000 AS INTEGER)),
           CAST(unixepoch('subsec') * 1000 AS INTEGER),
           CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM webhooks w JOIN accounts a ON a.id = w.account_id
    WHERE a.name = NEW.account;
END;
