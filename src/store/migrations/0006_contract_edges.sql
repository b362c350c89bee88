-- Retry billing: every send of a part has its own reservation, numbered by `round` (1 = the
-- first send). An operator retry of a part whose reservation was settled (refunded because it
-- never left, or committed because it left and the network then failed it) reserves a new round,
-- committed when that send leaves and refunded if it does not. Earlier rounds stay as they were.
CREATE TABLE credit_reservations_v2 (
    message_id INTEGER NOT NULL,
    part_seq INTEGER NOT NULL,
    round INTEGER NOT NULL DEFAULT 1,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    lot_id INTEGER NOT NULL REFERENCES credit_lots(id),
    state TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'refunded')),
    reserved_at INTEGER NOT NULL,
    settled_at INTEGER,
    refunded_to INTEGER REFERENCES credit_lots(id),
    PRIMARY KEY (message_id, part_seq, round)
) STRICT;
INSERT INTO credit_reservations_v2 (message_id, part_seq, round, account_id, lot_id, state,
                                    reserved_at, settled_at, refunded_to)
    SELECT message_id, part_seq, 1, account_id, lot_id, state, reserved_at, settled_at,
           refunded_to
    FROM credit_reservations;
DROP TABLE credit_reservations;
ALTER TABLE credit_reservations_v2 RENAME TO credit_reservations;

-- An administrator's cancel of a held message closes its review row ('cancelled'), so no
-- review is left pending that nothing can act on.
CREATE TABLE review_queue_v2 (
    message_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    category TEXT NOT NULL,
    word TEXT NOT NULL,
    held_at INTEGER NOT NULL,
    decision TEXT CHECK (decision IN ('approve', 'reject', 'violation', 'cancelled')),
    reviewer TEXT,
    decided_at INTEGER
) STRICT;
INSERT INTO review_queue_v2 SELECT message_id, account_id, category, word, held_at, decision,
                                   reviewer, decided_at
    FROM review_queue;
DROP TABLE review_queue;
ALTER TABLE review_queue_v2 RENAME TO review_queue;
CREATE INDEX review_pending ON review_queue(held_at) WHERE decision IS NULL;
