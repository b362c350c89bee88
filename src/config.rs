//! The daemon's configuration: one TOML file, every key optional with a documented default
//! (README "Configuration", `smsgate.example.toml`). [`Config::load`] reads, parses and checks it.
//!
//! What must always hold: a config error names the file, the line and the key; unknown keys are
//! errors (a misspelt key silently ignored is a quota silently not applied); a loaded `Config`
//! has passed [`Config::validate`] (e.g. audit retention is never below the 90 days the contract
//! requires, quotas are non-zero, a uid belongs to at most one account).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

pub mod check;
pub mod durations;
pub mod groups;

use durations::{duration, duration_opt};

/// The contract keeps send logs unmodified for at least 3 months (DOMAIN.md).
pub const MIN_AUDIT_RETENTION_DAYS: u32 = 90;

/// Errors of loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {message}", path.display(), at_line(*line))]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}{}: {key}: {message}", path.display(), at_line(*line))]
    Invalid {
        path: PathBuf,
        /// 0 when the key is not written in the file (a default or a missing key).
        line: usize,
        key: String,
        message: String,
    },
}

/// ":LINE", or nothing when the line is unknown (0).
fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The API's Unix socket.
    pub socket: PathBuf,
    /// The SQLite database (WAL mode; its directory must be writable).
    pub database: PathBuf,
    /// Members of this group (and root) are API admins.
    pub admin_group: String,
    /// tracing env-filter syntax: "info", "smsgate=debug", ...
    pub log_level: String,
    /// Validity of a message whose request gives none.
    #[serde(with = "duration")]
    pub default_validity: SignedDuration,
    pub modems: ModemsConfig,
    pub quota: QuotaConfig,
    pub accounts: Vec<AccountConfig>,
    pub policy: PolicyConfig,
    pub audit: AuditConfig,
    pub backup: BackupConfig,
    /// Uids of front ends (`smsgate web`): such a peer may act for the account it names in the
    /// `x-smsgate-account` header (an account it has authenticated, e.g. by API key) and may
    /// verify API keys; it is not an admin.
    pub frontends: Vec<u32>,
    /// `[web]`: the settings of `smsgate web` (the network API); the daemon ignores them.
    pub web: WebConfig,
    /// `[[gateways]]`: carrier gateways (CMPP) that send for 106 numbers.
    pub gateways: Vec<GatewayEntry>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: PathBuf::from("/run/smsgate/api.sock"),
            database: PathBuf::from("/var/lib/smsgate/smsgate.db"),
            admin_group: "smsgate-admin".into(),
            log_level: "info".into(),
            default_validity: SignedDuration::from_hours(24),
            modems: ModemsConfig::default(),
            quota: QuotaConfig::default(),
            accounts: Vec::new(),
            policy: PolicyConfig::default(),
            audit: AuditConfig::default(),
            backup: BackupConfig::default(),
            frontends: Vec::new(),
            web: WebConfig::default(),
            gateways: Vec::new(),
        }
    }
}

/// `[modems]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModemsConfig {
    /// Globs of serial ports; hot-plugged ports matching them join the bank.
    pub ports: Vec<String>,
    pub baud: u32,
    /// "auto" (the udev rules' `SMSGATE_DIALECT` hint for the port, else probe), or a dialect
    /// name: generic, huawei, zte, quectel, simcom, wavecom, phs.
    pub dialect: String,
    /// SIM PIN, entered when a SIM asks for one.
    pub pin: Option<String>,
    /// Bound on one AT+CMGS exchange (prompt, PDU, network answer); a modem silent that long
    /// is treated as a broken link (the part becomes `unknown` if its PDU was written).
    #[serde(with = "duration")]
    pub send_timeout: SignedDuration,
    /// What an ambiguous modem error (`+CMS ERROR: 332` network timeout, `500` unknown: the
    /// part may have reached the SMSC) does to its part: `hold` it as `unknown` until a status
    /// report or the operator settles it (never twice), or `retry` it elsewhere once
    /// `settle_window` passed with no report (for senders who prefer a possible duplicate to
    /// a lost OTP).
    pub on_ambiguous: OnAmbiguous,
    /// How long after its send an `unknown` part can be settled by a status report (or a late
    /// `+CMGS` answer) for its SIM and recipient, and how long `on_ambiguous = "retry"` waits.
    #[serde(with = "duration")]
    pub settle_window: SignedDuration,
}

/// `modems.on_ambiguous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAmbiguous {
    #[default]
    Hold,
    Retry,
}

impl Default for ModemsConfig {
    fn default() -> Self {
        ModemsConfig {
            ports: vec!["/dev/gsm/*".into()],
            baud: 115_200,
            dialect: "auto".into(),
            pin: None,
            send_timeout: SignedDuration::from_secs(60),
            on_ambiguous: OnAmbiguous::Hold,
            settle_window: SignedDuration::from_mins(10),
        }
    }
}

/// Per-SIM limits. Carriers suspend ordinary SIMs that send in bulk (DOMAIN.md); these keep each
/// SIM inside what its carrier tolerates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaLimits {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
    /// Least time between two parts sent by one SIM.
    #[serde(with = "duration")]
    pub min_interval: SignedDuration,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        QuotaLimits {
            per_minute: 10,
            per_hour: 200,
            per_day: 1000,
            min_interval: SignedDuration::from_secs(3),
        }
    }
}

/// One SIM's overrides, keyed by ICCID; absent keys take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaOverride {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    #[serde(with = "duration_opt")]
    pub min_interval: Option<SignedDuration>,
}

/// `[quota]` defaults, `[quota.sims."ICCID"]` overrides. (Not a flattened [`QuotaLimits`]:
/// serde's flatten loses both `deny_unknown_fields` and the error positions.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
    #[serde(with = "duration")]
    pub min_interval: SignedDuration,
    pub sims: BTreeMap<String, QuotaOverride>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        let d = QuotaLimits::default();
        QuotaConfig {
            per_minute: d.per_minute,
            per_hour: d.per_hour,
            per_day: d.per_day,
            min_interval: d.min_interval,
            sims: BTreeMap::new(),
        }
    }
}

impl QuotaConfig {
    /// The limits of a SIM without overrides.
    pub fn defaults(&self) -> QuotaLimits {
        QuotaLimits {
            per_minute: self.per_minute,
            per_hour: self.per_hour,
            per_day: self.per_day,
            min_interval: self.min_interval,
        }
    }

    /// The limits that apply to the SIM with this ICCID.
    pub fn for_sim(&self, iccid: &str) -> QuotaLimits {
        let d = self.defaults();
        match self.sims.get(iccid) {
            None => d,
            Some(o) => QuotaLimits {
                per_minute: o.per_minute.unwrap_or(d.per_minute),
                per_hour: o.per_hour.unwrap_or(d.per_hour),
                per_day: o.per_day.unwrap_or(d.per_day),
                min_interval: o.min_interval.unwrap_or(d.min_interval),
            },
        }
    }
}

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

/// `[policy]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Content rules file (keyword categories, review words), reloaded on SIGHUP; none: no
    /// content rules.
    pub rules: Option<PathBuf>,
    /// Replies that opt the sender out (compared case-insensitively, whole message trimmed).
    pub unsubscribe_words: Vec<String>,
    /// A reply counts as an opt-out from an account the replier got a message from within
    /// this many days.
    pub optout_lookback_days: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            rules: None,
            unsubscribe_words: ["TD", "T", "R", "N", "退订", "取消", "STOP"]
                .into_iter()
                .map(String::from)
                .collect(),
            optout_lookback_days: 30,
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days the send log is kept; at least 90 (the contract's 3 months). MIIT Order 31 asks 5
    /// months for commercial SMS, hence the default of 180.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 180,
        }
    }
}

/// `[backup]`: where `smsgate backup` (with neither `--to` nor `--to-dir`, as the daily
/// smsgate-backup.timer runs it) writes, and how many of its backups it keeps there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    pub dir: PathBuf,
    /// The newest this many `smsgate-*.db` files in `dir` are kept; older ones are removed
    /// after a new backup has passed its checks.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: PathBuf::from("/var/lib/smsgate/backups"),
            keep: 14,
        }
    }
}

/// `[web]`: the listener of `smsgate web`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Address and port, e.g. "127.0.0.1:8080" or "[::]:443".
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, the listener speaks TLS (rustls).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address (behind a TLS-terminating proxy). Default false:
    /// keys must not cross a network in clear.
    pub insecure_http: bool,
    /// Network API requests per second per account (a token bucket holding one second's
    /// worth); more get 429 with Retry-After.
    pub rate_per_second: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            rate_per_second: 10,
        }
    }
}

impl WebConfig {
    /// The parsed `listen` address.
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.listen.parse().map_err(|_| {
            format!(
                "{:?} is not an address and port such as \"127.0.0.1:8080\" or \"[::]:443\"",
                self.listen
            )
        })
    }

    /// Whether the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_owned(), msg));
        let addr = match self.listen_addr() {
            Ok(a) => a,
            Err(e) => return bad("web.listen", e),
        };
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            let missing = if self.tls_cert.is_none() {
                "web.tls_cert"
            } else {
                "web.tls_key"
            };
            return bad(
                missing,
                "tls_cert and tls_key go together: give both or neither".into(),
            );
        }
        if !addr.ip().is_loopback() && !self.tls() && !self.insecure_http {
            return bad(
                "web.listen",
                format!(
                    "{addr} is reachable from the network but no TLS is configured: set \
                     web.tls_cert and web.tls_key, or web.insecure_http = true behind a \
                     TLS-terminating proxy"
                ),
            );
        }
        if self.rate_per_second == 0 {
            return bad("web.rate_per_second", "must be at least 1".into());
        }
        Ok(())
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(path, &text)
    }

    /// Parses and validates `text`; `path` only names the file in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| line_of(text, span.start))
                .unwrap_or(0);
            // toml names the position, not always the key: add the key assigned on that line.
            let key = text
                .lines()
                .nth(line.saturating_sub(1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !k.starts_with('['));
            let message = err.message().trim();
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                message: match key {
                    Some(key) if !message.contains(key) => format!("{key}: {message}"),
                    _ => message.to_owned(),
                },
            }
        })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_owned(),
                line: key_line(text, &key),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Checks what types alone cannot; the error names the key (dotted path) and the problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_owned(), msg));
        if self.audit.retention_days < MIN_AUDIT_RETENTION_DAYS {
            return bad(
                "audit.retention_days",
                format!(
                    "must be at least {MIN_AUDIT_RETENTION_DAYS} (send logs are kept for at least \
                     3 months), got {}",
                    self.audit.retention_days
                ),
            );
        }
        if self.socket.as_os_str().is_empty() {
            return bad("socket", "must not be empty".into());
        }
        if self.database.as_os_str().is_empty() {
            return bad("database", "must not be empty".into());
        }
        if self.modems.baud == 0 {
            return bad("modems.baud", "must be a positive baud rate".into());
        }
        if !self.modems.send_timeout.is_positive() {
            return bad("modems.send_timeout", "must be positive".into());
        }
        if !self.modems.settle_window.is_positive() {
            return bad("modems.settle_window", "must be positive".into());
        }
        if let Some(pin) = &self.modems.pin {
            if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return bad("modems.pin", "must be 4 to 8 digits".into());
            }
        }
        check_limits("quota", &self.quota.defaults())?;
        for iccid in self.quota.sims.keys() {
            let key = format!("quota.sims.{iccid}");
            // ICCIDs are 19-20 digits in practice (ITU-T E.118); some SIMs add a trailing F.
            if !(18..=22).contains(&iccid.len()) || !iccid.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad(&key, "an ICCID is 18 to 22 digits".into());
            }
            check_limits(&key, &self.quota.for_sim(iccid))?;
        }
        if !self.default_validity.is_positive() {
            return bad("default_validity", "must be positive".into());
        }
        let mut seen_names = std::collections::HashSet::new();
        let mut seen_uids = std::collections::HashMap::new();
        for account in &self.accounts {
            if account.name.trim().is_empty() {
                return bad("accounts.name", "every account needs a name".into());
            }
            if !seen_names.insert(account.name.as_str()) {
                return bad(
                    "accounts.name",
                    format!("account {:?} is listed twice", account.name),
                );
            }
            for uid in &account.uids {
                if let Some(other) = seen_uids.insert(*uid, account.name.as_str()) {
                    return bad(
                        "accounts.uids",
                        format!(
                            "uid {uid} is in both {other:?} and {:?}; a uid acts for one account",
                            account.name
                        ),
                    );
                }
            }
        }
        self.validate_gateways()?;
        if self.backup.keep == 0 {
            return bad(
                "backup.keep",
                "must be at least 1 (the backup just made is kept)".into(),
            );
        }
        if self
            .policy
            .unsubscribe_words
            .iter()
            .any(|w| w.trim().is_empty())
        {
            return bad("policy.unsubscribe_words", "words must not be empty".into());
        }
        self.web.validate()?;
        Ok(())
    }
}

impl Config {
    /// `[[gateways]]` and the accounts' channel keys (issue 12).
    fn validate_gateways(&self) -> Result<(), (String, String)> {
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

fn check_limits(prefix: &str, q: &QuotaLimits) -> Result<(), (String, String)> {
    for (key, value) in [
        ("per_minute", q.per_minute),
        ("per_hour", q.per_hour),
        ("per_day", q.per_day),
    ] {
        if value == 0 {
            return Err((
                format!("{prefix}.{key}"),
                "must be at least 1 (take the SIM out of the ports list to stop it)".into(),
            ));
        }
    }
    if q.per_minute > q.per_hour || q.per_hour > q.per_day {
        let culprit = if q.per_minute > q.per_hour {
            "per_minute"
        } else {
            "per_day"
        };
        return Err((
            format!("{prefix}.{culprit}"),
            format!(
                "limits must grow with the window: per_minute {} <= per_hour {} <= per_day {}",
                q.per_minute, q.per_hour, q.per_day
            ),
        ));
    }
    if q.min_interval.is_negative() {
        return Err((
            format!("{prefix}.min_interval"),
            "must not be negative".into(),
        ));
    }
    Ok(())
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()
        .get(..at)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// The line where the last segment of a dotted key is assigned, inside its own table (top-level
/// keys before any table); 0 when it is not in the file (a default value is at fault). A best effort for error
/// messages, not a TOML parser: it looks for `key =` at the start of a line.
pub(crate) fn key_line(text: &str, dotted: &str) -> usize {
    let (table, key) = match dotted.rsplit_once('.') {
        Some((t, k)) => (t, k),
        None => ("", dotted),
    };
    let mut current = String::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(header) = l.strip_prefix('[') {
            current = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .replace('"', "");
            continue;
        }
        let assigned = l
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"'))
            .unwrap_or("");
        if assigned == key && current == table {
            return n + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("/etc/smsgate.toml"), text)
    }

    const GATEWAY: &str = r#"
[[gateways]]
name = "cmcc"
address = "10.1.2.3:7890"
sp_id = "901234"
secret_file = "/etc/smsgate/cmcc.secret"
src_id = "1069012345"
service_id = "MXX0000001"
connections = 2
"#;

    #[test]
    fn gateways_and_account_channels_of_the_issue() {
        let c = load(&format!(
            "{GATEWAY}
[[accounts]]
name = \"shop\"
uids = [1001]
sender = \"106\"
senders = [\"106\", \"mobile\"]
gateway = \"cmcc\"
extension = \"42\"
"
        ))
        .unwrap();
        let g = &c.gateways[0];
        assert_eq!(
            (g.protocol.as_str(), g.connections, g.window),
            ("cmpp3", 2, 16)
        );
        assert_eq!(g.max_per_second, None);
        let a = &c.accounts[0];
        assert_eq!(a.sender, SenderKind::Service106);
        assert_eq!(
            a.allowed_senders(),
            vec![SenderKind::Service106, SenderKind::Mobile]
        );
        assert!(!a.fallback);
        assert_eq!(
            AccountConfig::default().allowed_senders(),
            vec![SenderKind::Mobile]
        );
    }

    #[test]
    fn bad_gateway_channels_are_named() {
        let cases = [
            ("sender = \"106\"", "needs a gateway"),
            (
                "sender = \"106\"\ngateway = \"cmpp\"",
                "unknown gateway \"cmpp\"",
            ),
            (
                "sender = \"106\"\ngateway = \"cmcc\"\nextension = \"4a\"",
                "must be digits",
            ),
            (
                "sender = \"106\"\ngateway = \"cmcc\"\nextension = \"123456789012\"",
                "more than the 21",
            ),
            (
                "senders = [\"106\"]\ngateway = \"cmcc\"",
                "default sender \"mobile\"",
            ),
        ];
        for (keys, want) in cases {
            let text = format!("{GATEWAY}\n[[accounts]]\nname = \"shop\"\n{keys}\n");
            let err = load(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{keys}: {err}");
        }
        let err = load(
            &GATEWAY
                .replace("cmpp3", "smpp")
                .replace("name = \"cmcc\"", "name = \"cmcc\"\nprotocol = \"smpp\""),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gateways.protocol"), "{err}");
        let err = load("[[accounts]]\nname = \"x\"\nsender = \"fax\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sender"), "{err}");
    }

    #[test]
    fn secret_file_mode_is_checked_and_the_secret_never_shown() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmcc.secret");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let mut g = GatewayEntry {
            secret_file: path.clone(),
            ..GatewayEntry::default()
        };
        for mode in [0o600, 0o640] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(g.read_secret().unwrap(), "s3cr3t-value");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = g.read_secret().unwrap_err().to_string();
        assert!(err.contains("644") && !err.contains("s3cr3t"), "{err}");
        g.secret_file = dir.path().join("missing");
        assert!(g.read_secret().is_err());
        assert!(!format!("{g:?}").contains("s3cr3t"));
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = load("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.quota.per_hour, 200);
        assert_eq!(c.quota.min_interval, SignedDuration::from_secs(3));
        assert_eq!(c.audit.retention_days, 180);
        assert_eq!(c.policy.optout_lookback_days, 30);
    }

    #[test]
    fn web_listen_off_loopback_needs_tls_or_insecure_http() {
        let c = load("frontends = [998]\n[web]\nrate_per_second = 5\n").unwrap();
        assert_eq!(c.frontends, vec![998]);
        assert_eq!(c.web.listen, "127.0.0.1:8080");
        assert_eq!(c.web.rate_per_second, 5);
        let err = load("[web]\nlisten = \"0.0.0.0:8443\"\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(":2: web.listen") && text.contains("TLS"),
            "{text}"
        );
        load("[web]\nlisten = \"0.0.0.0:8080\"\ninsecure_http = true\n").unwrap();
        load("[web]\nlisten = \"[::]:443\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
        let err = load("[web]\ntls_cert = \"c.pem\"\n").unwrap_err();
        assert!(err.to_string().contains("web.tls_key"), "{err}");
        let err = load("[web]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(err.to_string().contains("web.listen"), "{err}");
        let err = load("[web]\nrate_per_second = 0\n").unwrap_err();
        assert!(err.to_string().contains("web.rate_per_second"), "{err}");
    }

    #[test]
    fn minimal_file_of_the_issue() {
        let c = load(
            r#"
socket = "/run/smsgate/api.sock"
database = "/var/lib/smsgate/smsgate.db"
[modems]
ports = ["/dev/gsm/*", "/dev/ttyUSB*"]     # globs; hot-plugged ports matching them join
"#,
        )
        .unwrap();
        assert_eq!(c.modems.ports, vec!["/dev/gsm/*", "/dev/ttyUSB*"]);
        assert_eq!(c.modems.dialect, "auto");
    }

    #[test]
    fn sim_overrides_fall_back_to_defaults() {
        let c = load(
            r#"
default_validity = "2d"
[quota]
per_hour = 150
min_interval = "5s"
[quota.sims.89860012345678901234]
per_day = 500
"#,
        )
        .unwrap();
        let q = c.quota.for_sim("89860012345678901234");
        assert_eq!((q.per_minute, q.per_hour, q.per_day), (10, 150, 500));
        assert_eq!(q.min_interval, SignedDuration::from_secs(5));
        assert_eq!(c.quota.for_sim("other").per_day, 1000);
        assert_eq!(c.default_validity, SignedDuration::from_hours(48));
    }

    #[test]
    fn short_retention_is_an_error_naming_file_line_key() {
        let err = load("socket = \"/tmp/x\"\n[audit]\nretention_days = 60\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("/etc/smsgate.toml:3: audit.retention_days"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_and_wrong_type_name_the_line() {
        let msg = load("[modems]\nbaud = 9600\nbuad = 9600\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("/etc/smsgate.toml:3:") && msg.contains("buad"),
            "{msg}"
        );
        let msg = load("\n[quota]\nper_day = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("/etc/smsgate.toml:3: per_day:"), "{msg}");
        let msg = load("[quota]\nper_dya = 5\n").unwrap_err().to_string();
        assert!(
            msg.starts_with("/etc/smsgate.toml:2:") && msg.contains("per_dya"),
            "{msg}"
        );
        let msg = load("socket = [\n").unwrap_err().to_string();
        assert!(msg.starts_with("/etc/smsgate.toml:"), "{msg}");
    }

    #[test]
    fn quota_windows_must_grow() {
        let msg = load("[quota]\nper_minute = 500\n").unwrap_err().to_string();
        assert!(
            msg.starts_with("/etc/smsgate.toml:2: quota.per_minute:"),
            "{msg}"
        );
        let msg = load("[quota.sims.89860012345678901234]\nper_day = 50\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("/etc/smsgate.toml:2: quota.sims.89860012345678901234.per_day:"),
            "{msg}"
        );
        let msg = load("[quota.sims.8986]\nper_day = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("18 to 22 digits"), "{msg}");
        // A key not written in the file: no line number rather than a wrong one.
        let msg = load("[[accounts]]\nuids = [1]\n").unwrap_err().to_string();
        assert!(
            msg.starts_with("/etc/smsgate.toml: accounts.name:"),
            "{msg}"
        );
    }

    #[test]
    fn uid_in_two_accounts_is_an_error() {
        let err = load(
            "[[accounts]]\nname = \"a\"\nuids = [1000]\n[[accounts]]\nname = \"b\"\nuids = [1000]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("uid 1000"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Config::load(Path::new("/nonexistent/smsgate.toml")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("/nonexistent/smsgate.toml: cannot read"));
    }

    #[test]
    fn example_file_loads() {
        let text = include_str!("../smsgate.example.toml");
        let c = load(text).unwrap();
        assert!(!c.accounts.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = load(&text);
        }
    }
}
