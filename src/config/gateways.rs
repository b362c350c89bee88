//! `[[gateways]]`: carrier gateway accounts (CMPP) that send for 106 numbers, reading their shared
//! secret, and the checks of the gateways and of the accounts' channel keys (issue 12).
//!
//! What must hold: a secret file others may read or write is refused, and the secret itself never
//! appears in an error, a log or `config check`; an account's Src_Id (access number + extension)
//! fits CMPP's 21 octets; two accounts on one gateway never share an extension.

use std::path::PathBuf;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::durations::duration;
use super::{Config, SenderKind};

/// Src_Id is 21 octets in CMPP SUBMIT: the access number plus the extension must fit.
pub const SRC_ID_MAX: usize = 21;

/// `[[gateways]]`: one carrier gateway account (CMPP). The shared secret is read from
/// `secret_file` when the daemon starts and is never shown (not here, not in `config check`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayEntry {
    pub name: String,
    /// "cmpp3" (falls back to 2.0 when the gateway says so) or "cmpp2".
    pub protocol: String,
    /// `host:port` of the ISMG.
    pub address: String,
    /// The SP id (Source_Addr), at most 6 characters.
    pub sp_id: String,
    /// File holding the shared secret (mode 0600 or 0640).
    pub secret_file: PathBuf,
    /// The 106 access number; an account's extension is appended.
    pub src_id: String,
    /// Service_Id of every SUBMIT (at most 10 characters).
    pub service_id: String,
    /// TCP links to open (each logs in on its own). Default 1.
    pub connections: u32,
    /// SUBMITs in flight per link without a response. Default 16.
    pub window: u32,
    /// The provider's contracted rate for the whole gateway; none: no limit.
    pub max_per_second: Option<u32>,
    /// With no link up this long, messages of `fallback = true` accounts go to the modems.
    #[serde(with = "duration")]
    pub fallback_after: SignedDuration,
}

impl Default for GatewayEntry {
    fn default() -> Self {
        GatewayEntry {
            name: String::new(),
            protocol: "cmpp3".into(),
            address: String::new(),
            sp_id: String::new(),
            secret_file: PathBuf::new(),
            src_id: String::new(),
            service_id: String::new(),
            connections: 1,
            window: 16,
            max_per_second: None,
            fallback_after: SignedDuration::from_secs(30),
        }
    }
}

/// Why a gateway's secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: mode {mode:o} lets others read the secret; make it 0600 or 0640", path.display())]
    Mode { path: PathBuf, mode: u32 },
    #[error("{}: empty", path.display())]
    Empty { path: PathBuf },
}

impl GatewayEntry {
    /// Reads the shared secret (trailing newline removed), refusing a file others may read
    /// or write (anything beyond 0640). The secret itself is never part of an error.
    pub fn read_secret(&self) -> Result<String, SecretError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.secret_file.clone();
        let meta = std::fs::metadata(&path).map_err(|source| SecretError::Read {
            path: path.clone(),
            source,
        })?;
        let mode = meta.mode() & 0o7777;
        if mode & !0o640 != 0 {
            return Err(SecretError::Mode { path, mode });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read {
            path: path.clone(),
            source,
        })?;
        let secret = text.trim_end_matches(['\r', '\n']).to_string();
        if secret.is_empty() {
            return Err(SecretError::Empty { path });
        }
        Ok(secret)
    }
}

impl Config {
    /// `[[gateways]]` and the accounts' channel keys (issue 12).
    pub(super) fn validate_gateways(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_owned(), msg));
        let mut names = std::collections::HashSet::new();
        for g in &self.gateways {
            let who = format!("gateway {:?}", g.name);
            if g.name.trim().is_empty() {
                return bad("gateways.name", "every gateway needs a name".into());
            }
            if !names.insert(g.name.as_str()) {
                return bad("gateways.name", format!("{who} is listed twice"));
            }
            if !matches!(g.protocol.as_str(), "cmpp3" | "cmpp2") {
                return bad(
                    "gateways.protocol",
                    format!("{who}: {:?} is not \"cmpp3\" or \"cmpp2\"", g.protocol),
                );
            }
            if g.address
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return bad(
                    "gateways.address",
                    format!("{who}: {:?} is not host:port", g.address),
                );
            }
            if g.sp_id.is_empty() || g.sp_id.len() > 6 || !g.sp_id.is_ascii() {
                return bad(
                    "gateways.sp_id",
                    format!("{who}: the SP id is 1 to 6 characters"),
                );
            }
            if g.secret_file.as_os_str().is_empty() {
                return bad("gateways.secret_file", format!("{who}: required"));
            }
            if g.src_id.is_empty()
                || g.src_id.len() > SRC_ID_MAX
                || !g.src_id.bytes().all(|b| b.is_ascii_digit())
            {
                return bad(
                    "gateways.src_id",
                    format!("{who}: the access number is 1 to {SRC_ID_MAX} digits"),
                );
            }
            if g.service_id.len() > 10 || !g.service_id.is_ascii() {
                return bad(
                    "gateways.service_id",
                    format!("{who}: Service_Id is at most 10 characters"),
                );
            }
            if !(1..=64).contains(&g.connections) {
                return bad("gateways.connections", format!("{who}: 1 to 64 links"));
            }
            if !(1..=1024).contains(&g.window) {
                return bad("gateways.window", format!("{who}: 1 to 1024"));
            }
            if !g.fallback_after.is_positive() {
                return bad(
                    "gateways.fallback_after",
                    format!("{who}: must be positive"),
                );
            }
            if g.max_per_second == Some(0) {
                return bad(
                    "gateways.max_per_second",
                    format!("{who}: must be at least 1 (leave it out for no limit)"),
                );
            }
        }
        let mut extensions = std::collections::HashMap::new();
        for a in &self.accounts {
            let who = format!("account {:?}", a.name);
            if let Some(g) = &a.gateway {
                if let Some(other) = extensions.insert((g.as_str(), a.extension.as_str()), &a.name)
                {
                    return bad(
                        "accounts.extension",
                        format!(
                            "{who} and account {other:?} share gateway {g:?} and extension {:?}: \
                             replies could not tell them apart",
                            a.extension
                        ),
                    );
                }
            }
            let allowed = a.allowed_senders();
            if !allowed.contains(&a.sender) {
                return bad(
                    "accounts.senders",
                    format!(
                        "{who}: its default sender {:?} is not in senders",
                        a.sender.as_str()
                    ),
                );
            }
            let gateway = match &a.gateway {
                Some(name) => match self.gateways.iter().find(|g| &g.name == name) {
                    Some(g) => Some(g),
                    None => {
                        return bad(
                            "accounts.gateway",
                            format!(
                                "{who}: unknown gateway {name:?} (no [[gateways]] has that name)"
                            ),
                        )
                    }
                },
                None => None,
            };
            if allowed.contains(&SenderKind::Service106) && gateway.is_none() {
                return bad(
                    "accounts.gateway",
                    format!("{who}: sender \"106\" needs a gateway (one of [[gateways]])"),
                );
            }
            if !a.extension.bytes().all(|b| b.is_ascii_digit()) {
                return bad(
                    "accounts.extension",
                    format!("{who}: the extension must be digits, got {:?}", a.extension),
                );
            }
            if let Some(g) = gateway {
                let len = g.src_id.len() + a.extension.len();
                if len > SRC_ID_MAX {
                    return bad(
                        "accounts.extension",
                        format!(
                            "{who}: Src_Id {} + {} is {len} digits, more than the {SRC_ID_MAX} \
                             CMPP allows",
                            g.src_id, a.extension
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}
