-- One unit of time in the database: Unix milliseconds (UTC), which the message tables (0001)
-- always used. The contract tables (0002) stored seconds; their times are multiplied by 1000
-- here, in the migration's transaction, and the store reads and writes milliseconds from now on.
--
-- Only a value that can be a time in seconds is converted: |v| <= 253402300799 (9999-12-31
-- 23:59:59 UTC in seconds, the latest time the store can hold). A value in milliseconds that
-- small would be before 1978-01-12, which no smsgate wrote, so a row already in milliseconds
-- (a database whose version number was set back by hand, a test that replays migrations) is
-- never multiplied twice and no value overflows.
--
-- The audit log keeps whole seconds in its `time`: a record's time is part of its hashed
-- content (audit::canonical_encoding, version 1) and of the export formats, and its rows are
-- append-only by trigger. Rewriting them would be exactly the change the chain exists to
-- reveal, so every existing chain verifies as before and new records are chained the same way.
UPDATE accounts SET created_at = created_at * 1000
    WHERE ABS(created_at) <= 253402300799;
UPDATE accounts SET blacklisted_at = blacklisted_at * 1000
    WHERE ABS(blacklisted_at) <= 253402300799;
UPDATE credit_lots SET purchased_at = purchased_at * 1000
    WHERE ABS(purchased_at) <= 253402300799;
UPDATE credit_lots SET expires_at = expires_at * 1000
    WHERE ABS(expires_at) <= 253402300799;
UPDATE credit_reservations SET reserved_at = reserved_at * 1000
    WHERE ABS(reserved_at) <= 253402300799;
UPDATE credit_reservations SET settled_at = settled_at * 1000
    WHERE ABS(settled_at) <= 253402300799;
UPDATE review_queue SET held_at = held_at * 1000
    WHERE ABS(held_at) <= 253402300799;
UPDATE review_queue SET decided_at = decided_at * 1000
    WHERE ABS(decided_at) <= 253402300799;
UPDATE number_blacklist SET added_at = added_at * 1000
    WHERE ABS(added_at) <= 253402300799;
UPDATE opt_outs SET opted_out_at = opted_out_at * 1000
    WHERE ABS(opted_out_at) <= 253402300799;
UPDATE recent_sends SET sent_at = sent_at * 1000
    WHERE ABS(sent_at) <= 253402300799;
