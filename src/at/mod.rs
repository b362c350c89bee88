//! The AT layer, sans-I/O (3GPP TS 27.005 / 27.007): the [`Digester`] that turns modem output
//! bytes into [`Event`]s, typed commands ([`AtCommand`]) with their reply parsers and timeouts,
//! and the device error enums ([`CmsError`], [`CmeError`], [`DeviceError`]) with the
//! [`ErrorClass`] the scheduler uses. No I/O here: the modem driver (`crate::modem`) owns the
//! port and feeds bytes in. What must always hold: no input makes any function here panic.

pub mod command;
pub mod digest;
pub mod error;

pub use command::*;
pub use digest::{DigestStats, Digester, Event, MAX_LINE};
pub use error::{CmeError, CmsError, DeviceError, ErrorClass};

/// Fuzz body (used by `fuzz/fuzz_targets/at_digest.rs` and a unit test): feeds `data` to a
/// digester in chunks whose sizes come from the data itself, checking the digester's promises.
pub fn fuzz_digest(data: &[u8]) {
    let mut d = Digester::new().with_urcs(["^HCMGSS"]);
    let chunk = data.first().map_or(1, |b| usize::from(*b % 17) + 1);
    let mut buf: Vec<u8> = Vec::new();
    for (i, piece) in data.chunks(chunk).enumerate() {
        d.expect(if i % 2 == 0 { Some("+CMGS") } else { None }, i % 3 == 0);
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            let (ev, n) = d.digest(&buf);
            assert!(n <= before, "digest consumed more than it was given");
            buf.drain(..n);
            if ev.is_none() && n == 0 {
                break;
            }
        }
        // Without a terminator a line may wait, but never beyond MAX_LINE.
        assert!(buf.len() <= MAX_LINE + 2);
    }
}
