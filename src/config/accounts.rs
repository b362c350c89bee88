//! `[[accounts]]`: which local users act for which customer account, the account's text rules,
//! and the sender kinds (mobile, PHS, 106) it may send with (issue 12).
//!
//! What must hold: `SenderKind`'s names ("mobile", "phs", "106") are the ones in the config and
//! the API, in both directions; an account with no `senders` may send only with its `sender`.
//! Cross-account checks (unique names, uids, extensions) live in [`super::Config::validate`].

use serde::{Deserialize, Serialize};

/// `[[accounts]]`: which local users act for which customer account on the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    pub name: String,
    pub uids: Vec<u32>,
    /// Group names (or numeric gids); members act for this account.
    pub groups: Vec<String>,
    /// Never charged: no credit needed (the operator's own use, the demo). Default false.
    pub unmetered: bool,
    /// Every text must start with a 【signature】.
    pub signature_required: bool,
    /// Appended to every text unless already there, e.g. "回T退订".
    pub unsubscribe_suffix: Option<String>,
    /// Daily send window, e.g. "08:00-22:00 Asia/Shanghai"; messages outside wait for it.
    pub send_window: Option<String>,
    /// The sender kind of a request that names none (issue 12). Default "mobile".
    pub sender: SenderKind,
    /// The kinds this account may ask for; empty: only `sender`.
    pub senders: Vec<SenderKind>,
    /// The `[[gateways]]` name its 106 messages go through (required with "106").
    pub gateway: Option<String>,
    /// 扩展码: digits appended to the gateway's `src_id` in Src_Id, so replies find the
    /// account.
    pub extension: String,
    /// A 106 message may go out on the modems while its gateway is down (the recipient then
    /// sees a different sender). Default false.
    pub fallback: bool,
}

impl AccountConfig {
    /// The kinds this account may send with (`senders`, or just its default `sender`).
    pub fn allowed_senders(&self) -> Vec<SenderKind> {
        if self.senders.is_empty() {
            vec![self.sender]
        } else {
            self.senders.clone()
        }
    }
}

/// The three kinds of sender number (issue 12): a mobile number (the modem bank), a PHS
/// area-code number (PHS modules in the bank) or a 106 service number (a carrier gateway).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SenderKind {
    #[default]
    #[serde(rename = "mobile")]
    Mobile,
    #[serde(rename = "phs")]
    Phs,
    #[serde(rename = "106")]
    Service106,
}

impl SenderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderKind::Mobile => "mobile",
            SenderKind::Phs => "phs",
            SenderKind::Service106 => "106",
        }
    }

    pub fn parse(s: &str) -> Option<SenderKind> {
        match s {
            "mobile" => Some(SenderKind::Mobile),
            "phs" => Some(SenderKind::Phs),
            "106" => Some(SenderKind::Service106),
            _ => None,
        }
    }
}

impl std::fmt::Display for SenderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
