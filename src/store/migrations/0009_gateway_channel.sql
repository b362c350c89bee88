-- The carrier-gateway channel (issue 12): a message is sent on the modem bank (sender kind
-- 'mobile' or 'phs', gateway NULL: every existing message) or on a named gateway (sender kind
-- '106', its Src_Id = the gateway's access number + the account's extension). `fallback`: the
-- account let a 106 message go to the modems while its gateway is down.
ALTER TABLE messages ADD COLUMN sender_kind TEXT NOT NULL DEFAULT 'mobile';
ALTER TABLE messages ADD COLUMN gateway TEXT;
ALTER TABLE messages ADD COLUMN src_id TEXT;
ALTER TABLE messages ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_gateway_state ON messages(gateway, state) WHERE gateway IS NOT NULL;

-- The Msg_Id the gateway's SUBMIT_RESP gave a part (a u64, kept as decimal text: SQLite's
-- INTEGER is signed and Msg_Ids from August on have the top bit set). Reports match on it.
ALTER TABLE parts ADD COLUMN gateway_msg_id TEXT;
CREATE INDEX parts_gateway_msg_id ON parts(gateway_msg_id) WHERE gateway_msg_id IS NOT NULL;

-- Every CMPP status report, matched or not (a report can come before its SUBMIT_RESP: it waits
-- here unmatched until the part's Msg_Id is recorded). One row per (gateway, Msg_Id): a
-- DELIVER the gateway sends again (its DELIVER_RESP was lost) is recorded once.
CREATE TABLE gateway_reports (
    id                  INTEGER PRIMARY KEY,
    gateway             TEXT NOT NULL,
    msg_id              TEXT NOT NULL,
    stat                TEXT NOT NULL,
    recipient           TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    part_id             INTEGER REFERENCES parts(id) ON DELETE SET NULL,
    UNIQUE (gateway, msg_id)
) STRICT;

-- An MO through a gateway names its account by the extension in Dest_Id.
ALTER TABLE inbound ADD COLUMN account TEXT;
ALTER TABLE inbound ADD COLUMN gateway TEXT;
