-- The web console's reads (issue 13, `store::console`): indexes so that an account's statistics,
-- its send log and the stuck webhook events are found along index ranges, not by scanning a
-- store of millions of parts. Replayable (IF NOT EXISTS); the two new columns of webhook_outbox
-- are added by this migration's hook (`store::console::add_console_columns`), only where
-- missing:
--   webhook_outbox.first_attempt_at INTEGER  -- Unix ms of the first delivery attempt
--   webhook_outbox.last_attempt_at INTEGER   -- Unix ms of the latest one
-- Named 0012: 0011 is the users helper's migration (issue 13); the merge orders them.

-- Messages and parts accepted today / this month, and the send log of a date range
-- (covering for the counts).
CREATE INDEX IF NOT EXISTS messages_account_created ON messages(account, created_at, part_count);
-- Parts failed per hour: counted when their message ended.
CREATE INDEX IF NOT EXISTS messages_account_finished ON messages(account, finished_at)
    WHERE finished_at IS NOT NULL;
-- Parts sent / delivered per hour over the last days; covering (message and state), so only
-- the message's row is read for its account (a third of the time with 700,000 parts).
CREATE INDEX IF NOT EXISTS parts_sent_at ON parts(sent_at, message_id, state)
    WHERE sent_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS parts_delivered_at ON parts(delivered_at, message_id)
    WHERE delivered_at IS NOT NULL;
-- Events not delivered after at least one attempt ("stuck").
CREATE INDEX IF NOT EXISTS webhook_outbox_stuck ON webhook_outbox(account_id, id)
    WHERE delivered_at IS NULL AND attempts >= 1;
