//! The admin commands: `account`, `credit`, `review` and `blacklist` talk to the running daemon
//! over its socket (admin routes, see `api::admin`); `log export` and `log verify` read the
//! database file directly (read-only), so they work with the daemon stopped.
//!
//! What must always hold: every command prints one clear line on error and exits non-zero;
//! `log verify` exits non-zero naming the first bad record; `--json` prints the API's JSON.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hyper::Method;
use jiff::{civil, tz::TimeZone, Timestamp, ToSpan};
use serde_json::Value;

use super::client::ClientOpts;
use super::BadInput;
use crate::api::admin::ReviewVerdict;
use crate::api::admin::{BlacklistRequest, CreditRequest, NewAccountRequest, ReviewRequest};
use crate::api::client::ApiClient;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn call(
    opts: &ClientOpts,
    method: Method,
    uri: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let client = ApiClient::new(&opts.socket);
    Ok(runtime()?.block_on(client.call::<Value, Value>(method, uri, body))?)
}

fn print(opts: &ClientOpts, v: &Value, plain: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if opts.json {
        serde_json::to_writer_pretty(&mut out, v)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", plain(v))?;
    }
    Ok(())
}

fn to_value<T: serde::Serialize>(t: &T) -> anyhow::Result<Value> {
    serde_json::to_value(t).context("encoding the request")
}

/// A path segment: account names are free text.
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// account

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(subcommand)]
    pub command: AccountCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add a customer account; --uid / --group map local users to it.
    Add {
        name: String,
        #[arg(long = "uid")]
        uids: Vec<u32>,
        /// Group name or numeric gid.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Every text must start with a 【signature】.
        #[arg(long)]
        signature_required: bool,
        /// Appended to every text unless already there, e.g. "回T退订".
        #[arg(long)]
        unsubscribe_suffix: Option<String>,
        /// Daily send window, e.g. "08:00-22:00 Asia/Shanghai".
        #[arg(long)]
        send_window: Option<String>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        opts: ClientOpts,
    },
}

fn gid_of(group: &str) -> anyhow::Result<u32> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(BadInput(format!("group {group:?} does not exist")).into()),
        Err(e) => bail!("looking up group {group:?}: {e}"),
    }
}

pub fn account(args: AccountArgs) -> anyhow::Result<()> {
    match args.command {
        AccountCommand::Add {
            name,
            uids,
            groups,
            signature_required,
            unsubscribe_suffix,
            send_window,
            opts,
        } => {
            let gids = groups
                .iter()
                .map(|g| gid_of(g))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let body = to_value(&NewAccountRequest {
                name,
                uids,
                gids,
                signature_required,
                unsubscribe_suffix,
                send_window,
            })?;
            let v = call(&opts, Method::POST, "/v1/accounts", Some(&body))?;
            print(&opts, &v, |v| {
                format!(
                    "account {} added\n",
                    v["account"]["name"].as_str().unwrap_or("?")
                )
            })
        }
        AccountCommand::List { opts } => {
            let v = call(&opts, Method::GET, "/v1/accounts", None)?;
            print(&opts, &v, |v| {
                let mut s = format!("{:<20} {:<16} {:<16} {}\n", "NAME", "UIDS", "GIDS", "STATE");
                for a in v["accounts"].as_array().into_iter().flatten() {
                    let state = match a["blacklisted"]["reason"].as_str() {
                        Some(r) => format!("blacklisted: {r}"),
                        None => "active".into(),
                    };
                    s.push_str(&format!(
                        "{:<20} {:<16} {:<16} {state}\n",
                        a["name"].as_str().unwrap_or("?"),
                        a["uids"].to_string(),
                        a["gids"].to_string(),
                    ));
                }
                s
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// credit

#[derive(Debug, Args)]
pub struct CreditArgs {
    #[command(subcommand)]
    pub command: CreditCommand,
}

#[derive(Debug, Subcommand)]
pub enum CreditCommand {
    /// Add a lot of credit (messages) to an account.
    Add {
        #[arg(long)]
        account: String,
        /// Number of message parts (条) bought.
        #[arg(long)]
        messages: u64,
        /// Price of the lot in yuan, e.g. 450 or 450.00.
        #[arg(long)]
        price: Option<String>,
        /// Expiry date (YYYY-MM-DD, local time zone, end of day) or an RFC 3339 time.
        #[arg(long, conflicts_with = "valid_for")]
        expires: Option<String>,
        /// Validity from now: 1y (the default), 6m, 90d.
        #[arg(long)]
        valid_for: Option<String>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Show an account's credit: available, reserved, used, expired, and every lot.
    Show {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

/// "450", "450.5", "450.50" yuan -> fen.
pub fn parse_price(s: &str) -> Result<i64, BadInput> {
    let bad = || {
        BadInput(format!(
            "--price {s:?}: expected an amount in yuan such as 450.00"
        ))
    };
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .filter(|v| *v >= 0)
        .ok_or_else(bad)
}

/// A date (local, end of that day) or an RFC 3339 time.
fn parse_time(s: &str, what: &str, end_of_day: bool) -> Result<Timestamp, BadInput> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d: civil::Date = s.parse().map_err(|_| {
        BadInput(format!(
            "{what} {s:?}: expected YYYY-MM-DD or an RFC 3339 time"
        ))
    })?;
    let d = if end_of_day {
        d.tomorrow()
            .map_err(|e| BadInput(format!("{what} {s:?}: {e}")))?
    } else {
        d
    };
    d.to_zoned_datetime(TimeZone::system())
        .map(|z| z.timestamp())
        .map_err(|e| BadInput(format!("{what} {s:?}: {e}")))
}

/// "1y", "6m", "90d" from `now`.
pub fn parse_valid_for(s: &str, now: Timestamp) -> Result<Timestamp, BadInput> {
    let bad = || BadInput(format!("--valid-for {s:?}: expected e.g. 1y, 6m or 90d"));
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n <= 0 || n > 100 {
        return Err(bad());
    }
    let span = match unit {
        "y" => n.years(),
        "m" => n.months(),
        "d" => n.days(),
        _ => return Err(bad()),
    };
    now.to_zoned_datetime(TimeZone::system())
        .checked_add(span)
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

fn credit_table(v: &Value) -> String {
    let mut s = format!(
        "available {}  reserved {}  used {}  expired {}\n",
        v["available"], v["reserved"], v["used"], v["expired"]
    );
    s.push_str(&format!(
        "{:<6} {:>8} {:>8} {:>8} {:>10}  {:<10} {}\n",
        "LOT", "BOUGHT", "USED", "RESERVED", "AVAILABLE", "STATE", "EXPIRES"
    ));
    for l in v["lots"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{:<6} {:>8} {:>8} {:>8} {:>10}  {:<10} {}\n",
            l["lot"]["id"],
            l["lot"]["quantity"],
            l["lot"]["used"],
            l["lot"]["reserved"],
            l["available"],
            l["state"].as_str().unwrap_or("?"),
            l["lot"]["expires_at"].as_str().unwrap_or("?"),
        ));
    }
    s
}

pub fn credit(args: CreditArgs) -> anyhow::Result<()> {
    match args.command {
        CreditCommand::Add {
            account,
            messages,
            price,
            expires,
            valid_for,
            opts,
        } => {
            if messages == 0 {
                return Err(BadInput("--messages must be at least 1".into()).into());
            }
            let price_fen = price.as_deref().map(parse_price).transpose()?.unwrap_or(0);
            let expires = match (expires, valid_for) {
                (Some(e), _) => Some(parse_time(&e, "--expires", true)?),
                (None, Some(v)) => Some(parse_valid_for(&v, Timestamp::now())?),
                (None, None) => None,
            };
            let body = to_value(&CreditRequest {
                messages,
                price_fen,
                expires,
            })?;
            let uri = format!("/v1/accounts/{}/credit", seg(&account));
            let v = call(&opts, Method::POST, &uri, Some(&body))?;
            print(&opts, &v, |v| {
                format!(
                    "lot {} added to {account}\n{}",
                    v["lot"],
                    credit_table(&v["credit"])
                )
            })
        }
        CreditCommand::Show { account, opts } => {
            let uri = format!("/v1/accounts/{}/credit", seg(&account));
            let v = call(&opts, Method::GET, &uri, None)?;
            print(&opts, &v, credit_table)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// review

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub command: ReviewCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Messages waiting for a reviewer.
    List {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Approve a held message: it is sent.
    Approve {
        id: i64,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Reject a held message: not sent, credit refunded; with --violation: charged and the
    /// account blacklisted.
    Reject {
        id: i64,
        #[arg(long)]
        violation: bool,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

pub fn review(args: ReviewArgs) -> anyhow::Result<()> {
    let (id, decision, opts) = match args.command {
        ReviewCommand::List { opts } => {
            let v = call(&opts, Method::GET, "/v1/reviews", None)?;
            return print(&opts, &v, |v| {
                let mut s = format!(
                    "{:<8} {:<14} {:<14} {:<16} {}\n",
                    "ID", "ACCOUNT", "CATEGORY", "TO", "TEXT"
                );
                for r in v["reviews"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{:<8} {:<14} {:<14} {:<16} {}\n",
                        r["id"],
                        r["account"].as_str().unwrap_or("-"),
                        r["category"].as_str().unwrap_or("-"),
                        r["to"].as_str().unwrap_or("-"),
                        r["text"].as_str().unwrap_or("-"),
                    ));
                }
                s
            });
        }
        ReviewCommand::Approve { id, opts } => (id, ReviewVerdict::Approve, opts),
        ReviewCommand::Reject {
            id,
            violation,
            opts,
        } => (
            id,
            if violation {
                ReviewVerdict::RejectAsViolation
            } else {
                ReviewVerdict::Reject
            },
            opts,
        ),
    };
    let body = to_value(&ReviewRequest { decision })?;
    let v = call(
        &opts,
        Method::POST,
        &format!("/v1/reviews/{id}"),
        Some(&body),
    )?;
    print(&opts, &v, |v| {
        format!(
            "message {id}: {}; refunded {}, charged {}\n",
            v["decision"].as_str().unwrap_or("?"),
            v["refunded"],
            v["charged"]
        )
    })
}

// ---------------------------------------------------------------------------------------------
// blacklist

#[derive(Debug, Args)]
pub struct BlacklistArgs {
    #[command(subcommand)]
    pub command: BlacklistCommand,
}

#[derive(Debug, Subcommand)]
pub enum BlacklistCommand {
    /// Blacklisted accounts and numbers.
    List {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Blacklist a number (globally, or for --account), or an account (--account alone).
    Add {
        #[arg(long)]
        number: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Remove a number from a blacklist, or lift an account's blacklisting (--account alone).
    Remove {
        #[arg(long)]
        number: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

pub fn blacklist(args: BlacklistArgs) -> anyhow::Result<()> {
    let (uri, number, account, reason, opts) = match args.command {
        BlacklistCommand::List { opts } => {
            let v = call(&opts, Method::GET, "/v1/blacklist", None)?;
            return print(&opts, &v, |v| {
                let mut s = String::from("accounts:\n");
                for a in v["accounts"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "  {:<20} {}\n",
                        a["account"].as_str().unwrap_or("?"),
                        a["reason"].as_str().unwrap_or("")
                    ));
                }
                s.push_str("numbers:\n");
                for n in v["numbers"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "  {:<16} {:<14} {}\n",
                        n["number"].as_str().unwrap_or("?"),
                        n["account"].as_str().unwrap_or("(global)"),
                        n["reason"].as_str().unwrap_or("")
                    ));
                }
                s
            });
        }
        BlacklistCommand::Add {
            number,
            account,
            reason,
            opts,
        } => ("/v1/blacklist", number, account, reason, opts),
        BlacklistCommand::Remove {
            number,
            account,
            reason,
            opts,
        } => ("/v1/blacklist/remove", number, account, reason, opts),
    };
    if number.is_none() && account.is_none() {
        return Err(BadInput("name a --number, an --account, or both".into()).into());
    }
    let body = to_value(&BlacklistRequest {
        account,
        number,
        reason,
    })?;
    let v = call(&opts, Method::POST, uri, Some(&body))?;
    print(&opts, &v, |v| {
        if v["changed"].as_bool() == Some(true) {
            "done\n".into()
        } else {
            "nothing to change\n".into()
        }
    })
}

// ---------------------------------------------------------------------------------------------
// log

#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: LogCommand,
}

/// Where the database is: --database, else the one the configuration file names.
#[derive(Debug, Clone, Args)]
pub struct DatabaseOpts {
    /// The smsgate database file (default: the one named in --config).
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// The configuration file naming the database.
    #[arg(long, default_value = "/etc/smsgate/smsgate.toml")]
    pub config: PathBuf,
}

impl DatabaseOpts {
    pub(crate) fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.database {
            return Ok(p.clone());
        }
        let config = crate::config::Config::load(&self.config)?;
        Ok(config.database)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Export the send log for a period (e.g. for a lawful request).
    Export {
        /// First day (YYYY-MM-DD, local) or RFC 3339 time, inclusive.
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD, local, inclusive) or RFC 3339 time (exclusive).
        #[arg(long)]
        to: String,
        /// Only records about this number (recipient or sending SIM).
        #[arg(long)]
        number: Option<String>,
        /// Only records of this account.
        #[arg(long)]
        account: Option<String>,
        #[arg(long, value_enum)]
        format: LogFormat,
        #[command(flatten)]
        db: DatabaseOpts,
    },
    /// Check the log's hash chain; exits non-zero naming the first bad record.
    Verify {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseOpts,
    },
}

fn open_read_only(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    if !path.exists() {
        bail!("database {} does not exist", path.display());
    }
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening database {}", path.display()))
}

pub fn log(args: LogArgs) -> anyhow::Result<()> {
    match args.command {
        LogCommand::Export {
            from,
            to,
            number,
            account,
            format,
            db,
        } => {
            let from = parse_time(&from, "--from", false)?;
            let to = parse_time(&to, "--to", true)?;
            if to <= from {
                return Err(BadInput("--to must be after --from".into()).into());
            }
            let path = db.path()?;
            let conn = open_read_only(&path)?;
            let account_id = match &account {
                Some(name) => Some(
                    crate::store::contract::account_by_name(&conn, name)?
                        .ok_or_else(|| BadInput(format!("no account {name:?}")))?
                        .id,
                ),
                None => None,
            };
            let filter = crate::store::audit::ExportFilter {
                from: Some(from),
                to: Some(to),
                number,
                account_id,
            };
            let format = match format {
                LogFormat::Csv => crate::audit::export::ExportFormat::Csv,
                LogFormat::Jsonl => crate::audit::export::ExportFormat::JsonLines,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            crate::store::audit::export(&conn, &filter, format, &mut out)?;
            out.flush()?;
            Ok(())
        }
        LogCommand::Verify { json, db } => {
            let path = db.path()?;
            let conn = open_read_only(&path)?;
            let report = crate::store::audit::verify(&conn)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            match report {
                crate::audit::VerifyReport::Intact { records } => {
                    if !json {
                        println!("audit log intact: {records} records");
                    }
                    Ok(())
                }
                crate::audit::VerifyReport::Broken { seq, fault } => {
                    bail!("audit log broken at record {seq}: {fault:?}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_in_yuan() {
        assert_eq!(parse_price("450").unwrap(), 45000);
        assert_eq!(parse_price("450.5").unwrap(), 45050);
        assert_eq!(parse_price("0.07").unwrap(), 7);
        assert!(parse_price("4.505").is_err());
        assert!(parse_price("-1").is_err());
        assert!(parse_price("abc").is_err());
        assert!(parse_price("").is_err());
    }

    #[test]
    fn validity_spans() {
        let now: Timestamp = "2026-01-15T00:00:00Z".parse().unwrap();
        let y = parse_valid_for("1y", now).unwrap();
        assert!(y.duration_since(now).as_hours() >= 365 * 24 - 24);
        assert!(y.duration_since(now).as_hours() <= 366 * 24 + 24);
        assert!(parse_valid_for("0y", now).is_err());
        assert!(parse_valid_for("1w", now).is_err());
        assert!(parse_valid_for("", now).is_err());
    }
}
