-- Indexes for the runner's due-parts and next-wake-up queries (store::batch), so that parts which
-- are not due yet (a future not_before, a back-off, a passed deadline to expire) are found along
-- an index range instead of filling the runner's window of due parts or being scanned each round.
CREATE INDEX IF NOT EXISTS messages_state_not_before ON messages(state, not_before) WHERE not_before IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_state_deadline ON messages(state, deadline) WHERE deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS parts_backoff ON parts(next_attempt_at)
    WHERE state = 'queued' AND next_attempt_at IS NOT NULL;
