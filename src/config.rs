//! The daemon's configuration: one TOML file, every key optional with a documented default
//! (README "Configuration", `smsgate.example.toml`). [`Config::load`] reads, parses and checks it.
//!
//! What must always hold: a config error names the file, the line and the key; unknown keys are
//! errors (a misspelt key silently ignored is a quota silently not applied); a loaded `Config`
//! has passed [`Config::validate`] (e.g. audit retention is never below the 90 days the contract
//! requires, quotas are non-zero, a uid belongs to at most one account).

use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

mod accounts;
mod audit;
mod backup;
pub mod check;
pub mod durations;
mod gateways;
pub mod groups;
mod modems;
mod policy;
mod quota;
mod web;

pub use accounts::{AccountConfig, SenderKind};
pub use audit::{AuditConfig, MIN_AUDIT_RETENTION_DAYS};
pub use backup::BackupConfig;
pub use gateways::{GatewayEntry, SecretError, SRC_ID_MAX};
pub use modems::{ModemsConfig, OnAmbiguous};
pub use policy::PolicyConfig;
pub use quota::{QuotaConfig, QuotaLimits, QuotaOverride};
pub use web::WebConfig;

use durations::duration;
use quota::check_limits;

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
