-- Contract schema: accounts, credit lots and per-part reservations, review queue, blacklists,
-- opt-outs, recent sends, and the hash-chained audit log. Owned by store::contract and
-- store::audit. Times are Unix seconds (UTC).

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uids TEXT NOT NULL DEFAULT '[]',           -- JSON array of unix uids
    gids TEXT NOT NULL DEFAULT '[]',           -- JSON array of unix gids
    signature_required INTEGER NOT NULL DEFAULT 0,
    unsubscribe_suffix TEXT,
    send_window TEXT,                          -- "08:00-22:00 Asia/Shanghai"
    blacklist_reason TEXT,
    blacklisted_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE credit_lots (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    price_fen INTEGER NOT NULL,
    purchased_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    used INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    refund_of INTEGER REFERENCES credit_lots(id),
    CHECK (reserved + used <= quantity)
) STRICT;
CREATE INDEX credit_lots_by_account ON credit_lots(account_id, expires_at);

-- One row per message part: each part is committed or refunded on its own.
CREATE TABLE credit_reservations (
    message_id INTEGER NOT NULL,
    part_seq INTEGER NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    lot_id INTEGER NOT NULL REFERENCES credit_lots(id),
    state TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'refunded')),
    reserved_at INTEGER NOT NULL,
    settled_at INTEGER,
    refunded_to INTEGER REFERENCES credit_lots(id),
    PRIMARY KEY (message_id, part_seq)
) STRICT;

CREATE TABLE review_queue (
    message_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    category TEXT NOT NULL,
    word TEXT NOT NULL,
    held_at INTEGER NOT NULL,
    decision TEXT CHECK (decision IN ('approve', 'reject', 'violation')),
    reviewer TEXT,
    decided_at INTEGER
) STRICT;
CREATE INDEX review_pending ON review_queue(held_at) WHERE decision IS NULL;

-- account_id 0 = global.
CREATE TABLE number_blacklist (
    account_id INTEGER NOT NULL,
    number TEXT NOT NULL,
    reason TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, number)
) STRICT;

CREATE TABLE opt_outs (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    number TEXT NOT NULL,
    opted_out_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (account_id, number)
) STRICT;

-- Filled by the daemon as it sends: who messaged which number when (opt-out attribution).
CREATE TABLE recent_sends (
    account_id INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    sent_at INTEGER NOT NULL
) STRICT;
CREATE INDEX recent_sends_by_recipient ON recent_sends(recipient, sent_at);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    event TEXT NOT NULL,
    account_id INTEGER,
    message_id INTEGER,
    sim_iccid TEXT,
    sim_number TEXT,
    recipient TEXT,
    text TEXT,
    parts INTEGER,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE INDEX audit_by_time ON audit_log(time);

-- The last record appended: detects removal from the end of the chain.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
) STRICT;

-- Set to 1 only inside the retention purge transaction.
CREATE TABLE purge_guard (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    active INTEGER NOT NULL
) STRICT;
INSERT INTO purge_guard (id, active) VALUES (1, 0);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN (SELECT active FROM purge_guard WHERE id = 1) IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows are removed only by the retention purge');
END;

-- Outside a purge, rows are only appended after the head (the purge inserts its anchor below
-- the head while the guard is set), and the head only moves forward.
CREATE TRIGGER audit_log_append_at_head BEFORE INSERT ON audit_log
WHEN (SELECT active FROM purge_guard WHERE id = 1) IS NOT 1
 AND NEW.seq <= COALESCE((SELECT seq FROM audit_head WHERE id = 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log rows are only appended after the head');
END;

CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.seq <= OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'audit_head only moves forward');
END;

CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head cannot be removed');
END;
