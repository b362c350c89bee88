//! What a SUBMIT_RESP Result means for the part, in one table (like `+CMS` codes for modems).
//! The rule behind the table: a code that says *this message* is wrong (its structure, length,
//! fee fields, service id, Src_Id, Msg_src, terminal ids) fails again however often it is
//! resent, so it is permanent; a code about the link or the moment (flow control, a sequence
//! collision, vendor codes we cannot read) is transient. Result 8 is flow control: the
//! gateway refused *for now*, the part is retried after slowing down, and it is not counted
//! as a failure at all.

/// The class of a SUBMIT_RESP Result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubmitClass {
    /// 0: accepted; the part is sent with its Msg_Id.
    Accepted,
    /// 8: the gateway's rate limit; slow the link and resubmit, not a failure.
    FlowControl,
    /// Resending the same part may succeed later.
    Transient,
    /// Resending the same part will fail again.
    Permanent,
}

/// One row of the table: code, class, what the spec calls it.
pub const SUBMIT_RESULTS: &[(u32, SubmitClass, &str)] = &[
    (0, SubmitClass::Accepted, "ok"),
    (1, SubmitClass::Permanent, "wrong message structure"),
    (2, SubmitClass::Permanent, "wrong command id"),
    // The gateway saw this Sequence_Id twice (our counter collided, e.g. after a reconnect):
    // the part itself was refused, not sent, and goes again under a fresh sequence.
    (3, SubmitClass::Transient, "duplicate sequence id"),
    (4, SubmitClass::Permanent, "wrong message length"),
    (5, SubmitClass::Permanent, "wrong fee code"),
    (6, SubmitClass::Permanent, "message too long"),
    (7, SubmitClass::Permanent, "wrong service id"),
    (8, SubmitClass::FlowControl, "flow control"),
    // 9-13: the account's or the message's addressing is refused by the gateway's
    // provisioning; no resend changes that (an operator must fix the configuration).
    (
        9,
        SubmitClass::Permanent,
        "not a chargeable number (fee terminal)",
    ),
    (10, SubmitClass::Permanent, "wrong Src_Id"),
    (11, SubmitClass::Permanent, "wrong Msg_src"),
    (12, SubmitClass::Permanent, "wrong Fee_terminal_Id"),
    (13, SubmitClass::Permanent, "wrong Dest_terminal_Id"),
];

/// The class of a Result code. Codes outside the table (14-99 unassigned, 100-199
/// vendor-specific) are transient: the spec gives them no meaning, and a bounded retry
/// (the scheduler's back-off and attempt limit) costs less than failing a paid part on a
/// code that may mean "busy".
pub fn classify_submit_result(code: u32) -> SubmitClass {
    SUBMIT_RESULTS
        .iter()
        .find(|r| r.0 == code)
        .map_or(SubmitClass::Transient, |r| r.1)
}

/// The spec's words for a Result code ("vendor-specific" / "unassigned" outside the table).
pub fn describe_submit_result(code: u32) -> &'static str {
    match SUBMIT_RESULTS.iter().find(|r| r.0 == code) {
        Some(r) => r.2,
        None if (100..=199).contains(&code) => "vendor-specific",
        None => "unassigned",
    }
}

/// CONNECT_RESP Status values.
pub mod connect_status {
    pub const OK: u32 = 0;
    pub const BAD_STRUCTURE: u32 = 1;
    pub const ILLEGAL_SOURCE: u32 = 2;
    pub const AUTH_FAILED: u32 = 3;
    pub const VERSION_TOO_HIGH: u32 = 4;
}
