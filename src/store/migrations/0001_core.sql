-- Core schema: messages, parts, SIMs, send attempts, inbound messages, status reports.
-- Owned by the store module (src/store/). Times are Unix milliseconds (UTC); states are the
-- snake_case names of the Rust enums in src/store/state.rs.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

CREATE TABLE sims (
    id                  INTEGER PRIMARY KEY,
    iccid               TEXT UNIQUE,
    imsi                TEXT,
    own_number          TEXT,
    carrier             TEXT NOT NULL DEFAULT 'unknown',
    port                TEXT,
    healthy             INTEGER NOT NULL DEFAULT 0,
    registered          INTEGER NOT NULL DEFAULT 0,
    signal_dbm          INTEGER,
    consecutive_errors  INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    rested_until        INTEGER,
    last_used_at        INTEGER,
    quota_per_minute    INTEGER,
    quota_per_hour      INTEGER,
    quota_per_day       INTEGER,
    min_interval_ms     INTEGER,
    first_seen_at       INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    CHECK (iccid IS NOT NULL OR imsi IS NOT NULL)
) STRICT;
CREATE INDEX sims_imsi ON sims(imsi);

CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY,
    account             TEXT,
    recipient           TEXT NOT NULL,
    recipient_carrier   TEXT NOT NULL DEFAULT 'unknown',
    text                TEXT NOT NULL,
    encoding            TEXT NOT NULL,
    part_count          INTEGER NOT NULL CHECK (part_count >= 1),
    state               TEXT NOT NULL,
    priority            INTEGER NOT NULL DEFAULT 0,
    not_before          INTEGER,
    deadline            INTEGER,
    report_requested    INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    sent_at             INTEGER,
    delivered_at        INTEGER,
    finished_at         INTEGER,
    last_error          TEXT
) STRICT;
CREATE INDEX messages_state ON messages(state, priority DESC, created_at);

CREATE TABLE parts (
    id                  INTEGER PRIMARY KEY,
    message_id          INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq                 INTEGER NOT NULL CHECK (seq >= 1),
    state               TEXT NOT NULL,
    pdu_hex             TEXT NOT NULL,
    cmgs_length         INTEGER NOT NULL,
    sim_id              INTEGER REFERENCES sims(id),
    tp_mr               INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,
    avoid_sims          TEXT NOT NULL DEFAULT '',
    error               TEXT,
    report_status       INTEGER,
    claimed_at          INTEGER,
    sent_at             INTEGER,
    delivered_at        INTEGER,
    UNIQUE (message_id, seq)
) STRICT;
CREATE INDEX parts_state ON parts(state);
CREATE INDEX parts_report ON parts(sim_id, tp_mr, sent_at) WHERE tp_mr IS NOT NULL;

-- One row per claim: what the per-SIM quotas count. Every attempt counts, because an attempt the
-- modem took may have reached the network even when it then failed.
CREATE TABLE send_attempts (
    id                  INTEGER PRIMARY KEY,
    sim_id              INTEGER NOT NULL REFERENCES sims(id),
    part_id             INTEGER NOT NULL REFERENCES parts(id) ON DELETE CASCADE,
    at                  INTEGER NOT NULL
) STRICT;
CREATE INDEX send_attempts_sim_at ON send_attempts(sim_id, at);

CREATE TABLE inbound (
    id                  INTEGER PRIMARY KEY,
    sim_id              INTEGER REFERENCES sims(id),
    sender              TEXT NOT NULL,
    text                TEXT NOT NULL DEFAULT '',
    concat_ref          INTEGER,
    concat_total        INTEGER NOT NULL DEFAULT 1,
    complete            INTEGER NOT NULL DEFAULT 0,
    scts                INTEGER,
    received_at         INTEGER NOT NULL,
    completed_at        INTEGER
) STRICT;
CREATE INDEX inbound_open ON inbound(sender, sim_id, concat_ref, complete, received_at);
CREATE INDEX inbound_received ON inbound(received_at);

CREATE TABLE inbound_parts (
    id                  INTEGER PRIMARY KEY,
    inbound_id          INTEGER NOT NULL REFERENCES inbound(id) ON DELETE CASCADE,
    seq                 INTEGER NOT NULL,
    text                TEXT NOT NULL,
    raw_pdu             TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    UNIQUE (inbound_id, seq)
) STRICT;

CREATE TABLE status_reports (
    id                  INTEGER PRIMARY KEY,
    sim_id              INTEGER REFERENCES sims(id),
    tp_mr               INTEGER NOT NULL,
    recipient           TEXT NOT NULL,
    status              INTEGER NOT NULL,
    raw_pdu             TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    part_id             INTEGER REFERENCES parts(id) ON DELETE SET NULL
) STRICT;
