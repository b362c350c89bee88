-- The carrier-gateway channel (issue 12). Replayable (a database whose version number was set
-- back by hand, a test that replays migrations): what SQLite cannot say IF NOT EXISTS about, the
-- new columns and their indexes, is added by this migration's hook (`store::add_gateway_columns`)
-- after this file, only where missing:
--   messages.sender_kind TEXT NOT NULL DEFAULT 'mobile'  -- 'mobile' | 'phs' | '106'
--   messages.gateway TEXT      -- the [[gateways]] name; NULL: the modem bank (every old message)
--   messages.src_id TEXT       -- Src_Id of its SUBMITs: access number + the account's extension
--   messages.fallback INTEGER NOT NULL DEFAULT 0  -- may go to the modems while its gateway is down
--   parts.gateway_msg_id TEXT  -- the Msg_Id of its SUBMIT_RESP (a u64 as decimal text: SQLite's
--                                 INTEGER is signed and Msg_Ids from August on set the top bit)
--   inbound.account TEXT, inbound.gateway TEXT  -- an MO's account, named by Dest_Id's extension
--   indexes messages_gateway_state (gateway, state) and parts_gateway_msg_id (gateway_msg_id)

-- Every CMPP status report, matched or not (a report can come before its SUBMIT_RESP: it waits
-- here unmatched until the part's Msg_Id is recorded). One row per (gateway, Msg_Id): a
-- DELIVER the gateway sends again (its DELIVER_RESP was lost) is recorded once.
CREATE TABLE IF NOT EXISTS gateway_reports (
    id                  INTEGER PRIMARY KEY,
    gateway             TEXT NOT NULL,
    msg_id              TEXT NOT NULL,
    stat                TEXT NOT NULL,
    recipient           TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    part_id             INTEGER REFERENCES parts(id) ON DELETE SET NULL,
    UNIQUE (gateway, msg_id)
) STRICT;
