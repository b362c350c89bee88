//! The CONNECT authenticators (MD5, RustCrypto `md-5`). Owns the exact byte order hashed:
//! AuthenticatorSource = MD5(Source_Addr as its 6 NUL-padded octets, 9 zero octets, shared
//! secret, timestamp as 10 ASCII digits MMDDHHMMSS); AuthenticatorISMG = MD5(Status,
//! AuthenticatorSource, secret). Padding a short Source_Addr before hashing matters: an
//! unpadded SP id gives a different digest (a known interop bug).

use md5::{Digest, Md5};

use super::pdu::{Connect, Version};

/// AuthenticatorSource of a CONNECT.
pub fn authenticator_source(source_addr: &[u8], secret: &[u8], timestamp: u32) -> [u8; 16] {
    let mut addr = [0u8; 6];
    let n = source_addr.len().min(6);
    addr[..n].copy_from_slice(&source_addr[..n]);
    let mut h = Md5::new();
    h.update(addr);
    h.update([0u8; 9]);
    h.update(secret);
    // {:010}: a January timestamp (0105...) keeps its leading zero.
    h.update(format!("{timestamp:010}").as_bytes());
    h.finalize().into()
}

/// AuthenticatorISMG of a CONNECT_RESP. Status is hashed in the width the response carries
/// it (1 octet in 2.0, 4 in 3.0); implementations disagree, so clients treat a mismatch as
/// a warning, not a failed login.
pub fn authenticator_ismg(
    status: u32,
    v: Version,
    authenticator_source: &[u8; 16],
    secret: &[u8],
) -> [u8; 16] {
    let mut h = Md5::new();
    match v {
        Version::V20 => h.update([status as u8]),
        Version::V30 => h.update(status.to_be_bytes()),
    }
    h.update(authenticator_source);
    h.update(secret);
    h.finalize().into()
}

/// MMDDHHMMSS of a civil time, as the Timestamp field wants it (month 1-12, ...).
pub fn timestamp(month: u8, day: u8, hour: u8, minute: u8, second: u8) -> u32 {
    u32::from(month) * 100_000_000
        + u32::from(day) * 1_000_000
        + u32::from(hour) * 10_000
        + u32::from(minute) * 100
        + u32::from(second)
}

impl Connect {
    /// A login for `source_addr` (the SP id) with `secret`, at `timestamp` (MMDDHHMMSS).
    pub fn new(source_addr: &[u8], secret: &[u8], timestamp: u32, version: u8) -> Connect {
        Connect {
            source_addr: source_addr.iter().copied().take(6).collect(),
            authenticator_source: authenticator_source(source_addr, secret, timestamp),
            version,
            timestamp,
        }
    }

    /// Whether the authenticator matches `secret` (what a gateway checks).
    pub fn verify(&self, secret: &[u8]) -> bool {
        authenticator_source(&self.source_addr, secret, self.timestamp) == self.authenticator_source
    }
}
