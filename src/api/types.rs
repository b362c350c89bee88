//! The JSON shapes of the API: every request and response body of `/v1/*`, shared by the
//! server (src/api/server.rs) and the CLI clients (src/cli/client.rs) so the two cannot drift.
//!
//! What must always hold: a type here is the wire contract users script against (README "API");
//! fields are only ever added (optional, with a default), never renamed or removed. Request types
//! reject unknown fields so a misspelt option is a 400, not silently ignored.

use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most recipients one `POST /v1/messages` may carry.
pub const MAX_RECIPIENTS: usize = 10_000;
/// Longest message text accepted, in characters (Unicode scalar values). About 15 UCS2 parts:
/// longer texts are almost always a mistake (a file pasted in), and cost the customer dearly.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// Longest recipient string before normalisation; real numbers are far shorter.
pub const MAX_NUMBER_CHARS: usize = 32;
/// Request body limit: 10,000 recipients of 32 characters plus a 1,000-character text (4 bytes
/// each in UTF-8) stay far below this.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default and largest page size of the list endpoints.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1_000;

/// Durations as people write them: owned by the configuration, which reads them first; the
/// request shapes use the same rules.
pub use crate::config::durations::{duration, duration_opt, parse_duration};

/// A message identifier, as the store assigns it (one per recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub u64);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for MessageId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .map(MessageId)
            .map_err(|_| format!("message id must be a positive integer, got {s:?}"))
    }
}

/// Scheduling priority of a message among those of the same account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

/// `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// Recipients, as the customer wrote them; the backend normalises and validates each.
    pub to: Vec<String>,
    pub text: String,
    /// Ask the network for a delivery (status) report.
    #[serde(default = "default_true")]
    pub report: bool,
    /// How long the network keeps trying, e.g. "24h", "2d" or "PT6H"; the configured default
    /// when absent.
    #[serde(
        default,
        with = "duration_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub validity: Option<SignedDuration>,
    /// Do not send before this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    #[serde(default)]
    pub priority: Priority,
    /// Admins only: act for this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The kind of sender number: "mobile", "phs" or "106" (issue 12); the account's default
    /// when absent. A kind the account may not use is refused (403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<crate::config::SenderKind>,
}

fn default_true() -> bool {
    true
}

/// One recipient the backend would not accept; the rest of the request still goes ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub to: String,
    /// Machine-readable reason, e.g. "invalid_number", "opted_out", "blacklisted".
    pub code: String,
    pub message: String,
}

/// `202` answer to `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// One id per accepted recipient, in the order of `to` (refused recipients are skipped).
    pub ids: Vec<MessageId>,
    /// SMS parts per message (the same for every recipient: one text).
    pub parts: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
}

/// The life of a message or of one of its parts (DESIGN.md "Message states").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Queued,
    HeldForReview,
    Scheduled,
    Sending,
    Sent,
    Delivered,
    Failed,
    Expired,
    Rejected,
    Cancelled,
    /// A part that may or may not have reached the network (it was `sending` when the daemon
    /// stopped, or the modem never confirmed it), and a message with such a part: never sent
    /// again on its own; an admin retries it (`POST /v1/messages/{id}/retry`, which may send a
    /// duplicate) or settles it (`POST /v1/messages/{id}/settle`).
    Unknown,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::HeldForReview => "held_for_review",
            MessageState::Scheduled => "scheduled",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::Rejected => "rejected",
            MessageState::Cancelled => "cancelled",
            MessageState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for MessageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SMS part of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartView {
    /// 1-based position in the concatenated message.
    pub seq: u32,
    pub state: MessageState,
    /// ICCID of the SIM that sent (or is sending) it.
    #[serde(default)]
    pub sim: Option<String>,
    /// The modem's +CMGS message reference, which the status report carries back.
    #[serde(default)]
    pub mr: Option<u8>,
    #[serde(default)]
    pub error: Option<String>,
    /// The Msg_Id a carrier gateway gave it (106 messages, issue 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
}

/// `GET /v1/messages/{id}` (and the items of the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: MessageId,
    pub to: String,
    pub state: MessageState,
    pub parts: Vec<PartView>,
    pub created: Timestamp,
    #[serde(default)]
    pub sent: Option<Timestamp>,
    #[serde(default)]
    pub delivered: Option<Timestamp>,
    /// "mobile", "phs" or "106" (issue 12; absent from older daemons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The gateway and Src_Id of a 106 message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_id: Option<String>,
}

/// Body of `POST /v1/messages/{id}/settle` (admins): the operator's verdict on the message's
/// `unknown` parts. `sent: false` refunds their credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    pub sent: bool,
}

/// Query of `GET /v1/messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<MessageState>,
    /// Page size, 1..=1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only messages with an id less than this: pages go newest first, and this is the previous
    /// page's `next_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<MessageId>,
    /// Admins only: another account's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// `GET /v1/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageList {
    pub messages: Vec<MessageView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<MessageId>,
}

/// What a modem port is doing, as the daemon's supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModemState {
    /// Opening the port, running the init sequence, waiting for the SIM or network.
    Starting,
    Ready,
    Sending,
    /// Healthy but paused by a quota or pacing limit.
    Resting,
    /// Failing; the supervisor restarts it with back-off.
    Failed,
    /// The port went away (unplugged).
    Gone,
    /// A second AT port of a module whose SIM another port already drives: listed, never
    /// used, so one SIM is never sent on from two ports at once.
    Duplicate,
}

/// Lifetime counters of one port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemCounters {
    pub sent: u64,
    pub failed: u64,
    pub delivered: u64,
    pub received: u64,
}

/// Parts the SIM may still send in the current windows of its quota.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLeft {
    pub minute: u32,
    pub hour: u32,
    pub day: u32,
}

/// One item of `GET /v1/gateways`: a carrier gateway (CMPP) and its links (issue 12). The
/// shared secret is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayView {
    pub name: String,
    pub address: String,
    /// The 106 access number.
    pub src_id: String,
    pub links_up: u32,
    pub links: Vec<GatewayLinkView>,
    /// Window per link, and SUBMITs in flight over all links now.
    pub window: u32,
    pub window_in_use: u32,
    /// Parts submitted (answered or unconfirmed) since the daemon started.
    pub submits: u64,
    /// SUBMIT_RESP results by code ("0" accepted, "8" flow control, ...).
    pub results: BTreeMap<String, u64>,
    pub reports: u64,
    pub mo: u64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One TCP link of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayLinkView {
    pub link: u32,
    /// up, connecting, down, refused (login refused: wrong secret or SP id), stopped.
    pub state: String,
    /// The CMPP version logged in with.
    #[serde(default)]
    pub version: Option<String>,
    pub in_flight: u32,
    /// SUBMITs written (resends after flow control included).
    pub written: u64,
    /// SUBMITs written and never answered.
    pub unconfirmed: u64,
    pub logins: u64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One item of `GET /v1/modems`: a port and the SIM in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemView {
    pub port: String,
    pub state: ModemState,
    #[serde(default)]
    pub iccid: Option<String>,
    #[serde(default)]
    pub imsi: Option<String>,
    #[serde(default)]
    pub operator: Option<String>,
    /// Received signal in dBm (from +CSQ); absent when unknown.
    #[serde(default)]
    pub signal_dbm: Option<i32>,
    #[serde(default)]
    pub counters: ModemCounters,
    #[serde(default)]
    pub quota_left: Option<QuotaLeft>,
    /// Parts the SIM sent in the last minute, hour and day (what the quota counts; the
    /// minute is the staff console's parts/min).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_used: Option<QuotaLeft>,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Query of `GET /v1/inbox`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// One inbound SMS (replies, unsubscribe words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundView {
    pub id: u64,
    pub from: String,
    pub text: String,
    pub received: Timestamp,
    /// ICCID of the SIM it arrived on.
    #[serde(default)]
    pub sim: Option<String>,
}

/// `GET /v1/inbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxList {
    pub messages: Vec<InboundView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// Overall condition of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    /// Running, but no modem is ready (nothing can be sent now).
    Degraded,
    ShuttingDown,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub version: String,
    pub modems_ready: u32,
    pub modems_total: u32,
    /// Messages accepted but not yet in a final state.
    pub pending: u64,
    /// Why the database cannot write now (disk full, I/O error): sending is paused and
    /// acceptance answers 507 until it writes again. Absent while all is well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

/// `POST /v1/quote`: what a text costs before it is sent (the web console's live counter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub text: String,
    /// The sender kind the send would ask for; one the account may not use is refused (403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<crate::config::SenderKind>,
    /// Recipients the send would have (default 1): `cost` is parts x recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u32>,
    /// Admins: the account to quote for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// The answer of `POST /v1/quote`, computed by the code acceptance bills with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteResponse {
    /// The text as it will be sent (the account's unsubscribe suffix appended).
    pub text_as_sent: String,
    /// Characters (Unicode scalar values) of `text_as_sent`.
    pub characters: u32,
    /// "gsm7" or "ucs2".
    pub encoding: String,
    /// Parts per recipient.
    pub parts: u32,
    /// Parts (条) charged: `parts` x recipients.
    pub cost: u64,
    /// The account requires a 【signature】 at the start and the text has none: a send would be
    /// refused (422 `signature_required`).
    #[serde(default)]
    pub signature_missing: bool,
}

/// `POST /v1/recipients/check`: at most [`MAX_RECIPIENTS`] numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientCheckRequest {
    pub numbers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// What a send would do with one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    Valid,
    /// Not a number a send accepts (`reason`: the parser's words).
    Invalid,
    /// The same number as an earlier row (in any spelling).
    Duplicate,
    /// Opted out of this account: a send skips it, uncharged.
    OptedOut,
    /// On the global or this account's blacklist: a send skips it, uncharged.
    Blacklisted,
}

/// One row of the check, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRow {
    pub input: String,
    /// The canonical number; absent when invalid.
    pub number: Option<String>,
    pub status: RecipientStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of `POST /v1/recipients/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientCheck {
    pub rows: Vec<RecipientRow>,
    /// Rows per status (every status, zeros included).
    pub counts: BTreeMap<String, u64>,
}

/// `GET /v1/stats?account=&days=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// 1..=31, default 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

/// Messages accepted in a period and their parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub messages: u64,
    pub parts: u64,
}

/// Parts per hour: sent (reached the network), delivered (report), failed (failed or expired,
/// counted when their message ended).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourStats {
    /// The hour's start, Unix milliseconds.
    pub hour: i64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// The answer of `GET /v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub account: String,
    pub days: u32,
    /// Since midnight, and since the first of the month, in the daemon's time zone.
    pub today: Tally,
    pub month: Tally,
    /// Of the parts sent in the last `days` days, the share delivered so far (0..=1); absent
    /// when none was sent.
    #[serde(default)]
    pub delivery_rate: Option<f64>,
    /// Every hour of the last `days` days, oldest first, the current hour last.
    pub hours: Vec<HourStats>,
}

/// `?account=` of the console's account-scoped reads (`GET /v1/optouts`, `GET /v1/webhooks`,
/// `GET /v1/webhooks/stuck`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// One number of an account's opt-out list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutView {
    pub number: String,
    pub at: Timestamp,
    /// How it came: the reply that opted out, or the operator's act.
    pub source: String,
}

/// The answer of `GET /v1/optouts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutList {
    pub account: String,
    pub optouts: Vec<OptOutView>,
}

/// `GET /v1/sendlog.csv?account=&from=&to=`: RFC 3339 instants or `YYYY-MM-DD` dates (in the
/// daemon's time zone; a `to` date includes that whole day). Default: the 30 days up to now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendLogQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// `PUT /v1/accounts/{name}/webhook` (network API: `PUT /api/v1/webhook`). The daemon makes a
/// new signing secret, in the answer once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPut {
    pub url: String,
}

/// An account's webhook (`GET /v1/accounts/{name}/webhook`, items of `GET /v1/webhooks`):
/// the URL and the first characters of the secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub account: String,
    /// None: the account has no webhook.
    pub url: Option<String>,
    #[serde(default)]
    pub secret_prefix: Option<String>,
}

/// `POST /v1/webhooks/due/{id}/fail` (front ends): one failed delivery attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub error: String,
}

/// `GET /v1/webhooks/stuck?account=`: events not delivered after at least one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckEvent {
    pub id: i64,
    pub account: String,
    /// "message_state" or "inbound".
    pub kind: String,
    #[serde(default)]
    pub message_id: Option<i64>,
    pub attempts: u32,
    pub created: Timestamp,
    /// Absent for attempts made before the daemon recorded them (migration 0012).
    #[serde(default)]
    pub first_attempt: Option<Timestamp>,
    #[serde(default)]
    pub last_attempt: Option<Timestamp>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the next attempt is due; absent once given up (24 h after the event).
    #[serde(default)]
    pub next_attempt: Option<Timestamp>,
    #[serde(default)]
    pub given_up: Option<Timestamp>,
}

/// The answer of `GET /v1/webhooks/stuck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckEvents {
    pub events: Vec<StuckEvent>,
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_write_them() {
        assert_eq!(parse_duration("3s").unwrap(), SignedDuration::from_secs(3));
        assert_eq!(parse_duration("6h").unwrap(), SignedDuration::from_hours(6));
        assert_eq!(
            parse_duration("PT6H").unwrap(),
            SignedDuration::from_hours(6)
        );
        assert_eq!(
            parse_duration("2d").unwrap(),
            SignedDuration::from_hours(48)
        );
        assert_eq!(
            parse_duration("1w").unwrap(),
            SignedDuration::from_hours(168)
        );
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert!(parse_duration("1 month").is_err());
        assert!(parse_duration("forever").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn send_request_round_trips_with_friendly_validity() {
        let json = r#"{"to":["139"],"text":"x","validity":"2d"}"#;
        let req: SendRequest = serde_json::from_str(json).unwrap();
        assert_eq!(req.validity, Some(SignedDuration::from_hours(48)));
        assert!(req.report, "delivery reports are on by default");
        let back = serde_json::to_string(&req).unwrap();
        let again: SendRequest = serde_json::from_str(&back).unwrap();
        assert_eq!(again, req);
    }

    proptest::proptest! {
        #[test]
        fn parse_duration_never_panics(s in "\\PC{0,40}") {
            let _ = parse_duration(&s);
        }
    }
}
