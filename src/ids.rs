//! Row ids and saturating time arithmetic: the small vocabulary the store and the scheduler
//! share. A leaf: it imports nothing from this crate, so both can depend on it without
//! depending on each other.
//!
//! What must always hold: ids are plain row ids with no behaviour; time arithmetic never
//! panics (times can come from a damaged database), it saturates at the ends of time.

use jiff::{SignedDuration, Timestamp};

/// Row id of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct MessageId(pub i64);
/// Row id of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PartId(pub i64);
/// Row id of a SIM: stable across ports and restarts (remembered by ICCID or IMSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct SimId(pub i64);
/// Row id of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct InboundId(pub i64);

/// `t + d`, saturating at the ends of time instead of panicking (times can come from a
/// damaged database).
pub fn after(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// `t - d`, saturating.
pub fn before(t: Timestamp, d: SignedDuration) -> Timestamp {
    after(t, d.checked_neg().unwrap_or(SignedDuration::MAX))
}
