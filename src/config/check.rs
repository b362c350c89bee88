//! Checking a configuration: what `smsgate config check` prints and what the daemon refuses to
//! start on. [`check_file`] parses the file (with [`Config::from_toml`]), then makes the checks
//! types cannot (the rules file compiles, the dialect exists, the port globs are globs, the
//! accounts' groups and send windows resolve), then lists what is legal but unwise (warnings).
//!
//! What must always hold: the daemon and `config check` run the same checks and print the same
//! messages (the daemon calls [`check_file`] before it starts, and [`startup_errors`] is also
//! what `daemon::run` refuses on); an error means the daemon will not start, a warning never
//! stops it; no input panics.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{key_line, Config, ConfigError};

/// Carriers tolerate about this many parts per hour from an ordinary SIM (DOMAIN.md: ">200/hour
/// or >1000/day" gets SIMs suspended).
pub const CARRIER_PER_HOUR: u32 = 200;
/// ... and per day.
pub const CARRIER_PER_DAY: u32 = 1000;
/// A retention under this many days is within a month of the 90-day floor: a warning.
pub const RETENTION_WARN_BELOW_DAYS: u32 = 120;

/// Something legal but unwise; `key` is the dotted configuration key it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The result of checking one file.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub file: PathBuf,
    /// The effective configuration (every default filled in), when the file parsed.
    pub config: Option<Config>,
    /// Each a full line naming the file (and line and key where known).
    pub errors: Vec<String>,
    pub warnings: Vec<Warning>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Reads and checks the configuration file at `path`, and where it is readable by others
/// while holding a secret (the SIM PIN), says so.
pub fn check_file(path: &Path) -> CheckReport {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(source) => {
            return CheckReport {
                file: path.to_owned(),
                config: None,
                errors: vec![ConfigError::Read {
                    path: path.to_owned(),
                    source,
                }
                .to_string()],
                warnings: Vec::new(),
            }
        }
    };
    let mut report = check_text(path, &text);
    if let Some(config) = &report.config {
        if config.modems.pin.is_some() {
            if let Some(w) = readable_by_others(path, "modems.pin") {
                report.warnings.push(w);
            }
        }
    }
    report
}

/// Checks `text` as the configuration file `path` (which only names it in messages, except
/// for the checks of the paths the configuration names).
pub fn check_text(path: &Path, text: &str) -> CheckReport {
    let config = match Config::from_toml(path, text) {
        Ok(c) => c,
        Err(e) => {
            return CheckReport {
                file: path.to_owned(),
                config: None,
                errors: vec![e.to_string()],
                warnings: Vec::new(),
            }
        }
    };
    let errors = startup_errors(&config)
        .into_iter()
        .map(|(key, message)| match key {
            Some(key) => ConfigError::Invalid {
                path: path.to_owned(),
                line: key_line(text, &key),
                key,
                message,
            }
            .to_string(),
            None => format!("{}: {message}", path.display()),
        })
        .collect();
    let warnings = warnings(&config);
    CheckReport {
        file: path.to_owned(),
        config: Some(config),
        errors,
        warnings,
    }
}

/// What stops the daemon from starting beyond [`Config::validate`]: each an optional dotted
/// key and a message. `daemon::run` refuses on the first of these.
pub fn startup_errors(config: &Config) -> Vec<(Option<String>, String)> {
    let mut errors = Vec::new();
    if let Err(e) = crate::bank::PortPatterns::new(&config.modems.ports) {
        errors.push((Some("modems.ports".into()), e.to_string()));
    }
    match config.modems.dialect.as_str() {
        "" | "auto" => {}
        name => {
            if crate::modem::dialect::by_name(name).is_none() {
                errors.push((
                    Some("modems.dialect".into()),
                    format!("unknown dialect {name:?}"),
                ));
            }
        }
    }
    if let Some(rules) = &config.policy.rules {
        match std::fs::read_to_string(rules) {
            Err(e) => errors.push((
                Some("policy.rules".into()),
                format!("{}: {e}", rules.display()),
            )),
            Ok(text) => {
                let compiled =
                    crate::policy::content::RulesFile::parse(&text, &rules.display().to_string())
                        .and_then(crate::policy::RuleSet::compile);
                if let Err(e) = compiled {
                    errors.push((Some("policy.rules".into()), e.to_string()));
                }
            }
        }
    }
    for account in &config.accounts {
        if let Some(window) = &account.send_window {
            if let Err(e) = crate::policy::SendWindow::parse(window) {
                errors.push((
                    Some("accounts.send_window".into()),
                    format!("accounts {:?}: {e}", account.name),
                ));
            }
        }
    }
    for g in &config.gateways {
        // The secret is read only to check it can be; it goes nowhere.
        if let Err(e) = g.read_secret() {
            errors.push((
                Some("gateways.secret_file".into()),
                format!("gateway {:?}: {e}", g.name),
            ));
        }
    }
    if let Err(e) = super::groups::check(config) {
        errors.push((None, e));
    }
    errors
}

/// What is legal but unwise in `config`, as it stands on this machine now.
pub fn warnings(config: &Config) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut warn = |key: String, message: String| out.push(Warning { key, message });
    let mut sims: Vec<(String, super::QuotaLimits)> =
        vec![("quota".into(), config.quota.defaults())];
    for iccid in config.quota.sims.keys() {
        sims.push((format!("quota.sims.{iccid}"), config.quota.for_sim(iccid)));
    }
    for (prefix, q) in sims {
        if q.per_hour > CARRIER_PER_HOUR {
            warn(
                format!("{prefix}.per_hour"),
                format!(
                    "{} parts an hour per SIM is above the ~{CARRIER_PER_HOUR} carriers tolerate \
                     from an ordinary SIM before suspending it",
                    q.per_hour
                ),
            );
        }
        if q.per_day > CARRIER_PER_DAY {
            warn(
                format!("{prefix}.per_day"),
                format!(
                    "{} parts a day per SIM is above the ~{CARRIER_PER_DAY} carriers tolerate \
                     from an ordinary SIM before suspending it",
                    q.per_day
                ),
            );
        }
    }
    if config.audit.retention_days < RETENTION_WARN_BELOW_DAYS {
        warn(
            "audit.retention_days".into(),
            format!(
                "{} days is close to the {}-day floor of the contract (MIIT Order 31 asks 5 \
                 months, ~150 days, for commercial SMS)",
                config.audit.retention_days,
                super::MIN_AUDIT_RETENTION_DAYS
            ),
        );
    }
    for pattern in &config.modems.ports {
        let matches = glob::glob(pattern)
            .map(|paths| paths.filter_map(Result::ok).count())
            .unwrap_or(0);
        if matches == 0 {
            warn(
                "modems.ports".into(),
                format!(
                    "{pattern:?} matches no port now (ports plugged in later still join; check \
                     the udev rules and `smsgate diag`)"
                ),
            );
        }
    }
    for (key, path) in [("socket", &config.socket), ("database", &config.database)] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                warn(
                    key.into(),
                    format!(
                        "directory {} does not exist (the daemon creates it if it may; under \
                         systemd, RuntimeDirectory=/StateDirectory= do)",
                        dir.display()
                    ),
                );
            }
        }
    }
    out
}

/// A warning when `path` can be read by users other than its owner and group: it holds the
/// secret named by `key`.
pub fn readable_by_others(path: &Path, key: &str) -> Option<Warning> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| Warning {
        key: key.into(),
        message: format!(
            "{} holds a secret and is readable by every user (mode {:04o}): chmod o-r it",
            path.display(),
            mode & 0o7777
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> CheckReport {
        check_text(Path::new("/etc/smsgate/smsgate.toml"), text)
    }

    fn keys(r: &CheckReport) -> Vec<&str> {
        r.warnings.iter().map(|w| w.key.as_str()).collect()
    }

    #[test]
    fn defaults_have_no_errors_and_fill_every_key() {
        let r =
            check("modems.ports = [\"/\"]\nsocket = \"/tmp/api.sock\"\ndatabase = \"/tmp/x.db\"\n");
        assert!(r.is_ok(), "{:?}", r.errors);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let c = r.config.unwrap();
        assert_eq!(c.backup.keep, 14);
        let shown = toml::to_string(&c).unwrap();
        for key in [
            "retention_days = 180",
            "per_hour = 200",
            "keep = 14",
            "settle_window",
        ] {
            assert!(shown.contains(key), "{key} missing from\n{shown}");
        }
    }

    #[test]
    fn unwise_quotas_and_retention_are_warnings() {
        let r = check(
            "modems.ports = [\"/\"]\nsocket = \"/tmp/a\"\ndatabase = \"/tmp/b\"\n[quota]\n\
             per_hour = 300\nper_day = 2000\n[quota.sims.89860012345678901234]\nper_hour = 150\n\
             per_day = 900\n[audit]\nretention_days = 95\n",
        );
        assert!(r.is_ok(), "{:?}", r.errors);
        assert_eq!(
            keys(&r),
            ["quota.per_hour", "quota.per_day", "audit.retention_days"]
        );
    }

    #[test]
    fn missing_ports_and_directories_are_warnings() {
        let r = check(
            "socket = \"/nonexistent-dir/api.sock\"\ndatabase = \"/tmp/x.db\"\n\
             [modems]\nports = [\"/dev/no-such-modem-*\"]\n",
        );
        assert!(r.is_ok(), "{:?}", r.errors);
        assert_eq!(keys(&r), ["modems.ports", "socket"]);
        assert!(r.warnings[0].message.contains("/dev/no-such-modem-*"));
    }

    #[test]
    fn startup_errors_name_file_line_and_key() {
        let r = check("[modems]\nports = [\"/\"]\ndialect = \"nokia\"\n");
        assert_eq!(
            r.errors,
            ["/etc/smsgate/smsgate.toml:3: modems.dialect: unknown dialect \"nokia\""]
        );
        let r = check("[policy]\nrules = \"/nonexistent/rules.toml\"\n");
        assert!(
            r.errors[0].starts_with("/etc/smsgate/smsgate.toml:2: policy.rules:"),
            "{:?}",
            r.errors
        );
        let r = check("[[accounts]]\nname = \"a\"\ngroups = [\"no-such-group-xyz\"]\n");
        assert!(r.errors[0].contains("no-such-group-xyz"), "{:?}", r.errors);
        let r = check("[[accounts]]\nname = \"a\"\nsend_window = \"soon\"\n");
        assert!(
            r.errors[0].starts_with("/etc/smsgate/smsgate.toml:3: accounts.send_window:"),
            "{:?}",
            r.errors
        );
        // A parse error is the only error: nothing else can be checked.
        let r = check("[modems]\nbaud = \"fast\"\n");
        assert_eq!(r.errors.len(), 1);
        assert!(r.config.is_none());
    }

    #[test]
    fn a_pin_in_a_world_readable_file_is_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smsgate.toml");
        std::fs::write(&path, "[modems]\nports = [\"/\"]\npin = \"1234\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(keys(&check_file(&path)).contains(&"modems.pin"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!keys(&check_file(&path)).contains(&"modems.pin"));
    }
}
