//! `smsgate user add|list|passwd|disable|enable` (admins): the users of the web console,
//! through the daemon's socket (`api::users` routes). A user is an account's `customer`
//! (`--account A`) or the operator's staff (`--staff --role reviewer|admin`).
//!
//! What must always hold: a password is read from `--password-file` (never from the command
//! line, where `ps` and the shell history would show it) or made here at random and printed
//! once on stdout; either way the user must change it at the first login; nothing else prints
//! a password, and the daemon keeps only its argon2id hash.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::client::ClientOpts;
use super::BadInput;
use crate::api::client::ApiClient;
use crate::api::users::{NewUserRequest, Role, UserView, MIN_PASSWORD_CHARS};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user: --account A (a customer of that account) or --staff with --role reviewer or
    /// admin. Without --password-file, a random initial password is printed once; the user
    /// must change it at the first login.
    Add {
        login: String,
        #[arg(long, required_unless_present = "staff", conflicts_with = "staff")]
        account: Option<String>,
        /// The operator's staff (no account).
        #[arg(long)]
        staff: bool,
        /// customer (with --account, the default), reviewer or admin (with --staff).
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        /// A file holding the initial password (one line).
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// List users (of one account): role, state, lock, last login.
    List {
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Set a user's password (from --password-file, or random and printed once): the user
    /// must change it at the next login; its sessions end and a lock is lifted.
    Passwd {
        login: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Disable a user: its sessions end and it cannot log in.
    Disable {
        login: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Enable a disabled user again.
    Enable {
        login: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not customer, reviewer or admin"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The password in `path`: its first line, without the line end.
fn read_password(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").to_owned();
    if line.chars().count() < MIN_PASSWORD_CHARS {
        return Err(BadInput(format!(
            "{}: the password must have at least {MIN_PASSWORD_CHARS} characters",
            path.display()
        ))
        .into());
    }
    Ok(line)
}

/// The password to set, and whether it was made here (then it is printed).
fn password(file: Option<&Path>) -> anyhow::Result<(String, bool)> {
    match file {
        Some(path) => Ok((read_password(path)?, false)),
        None => Ok((crate::api::users::random_password(), true)),
    }
}

fn or_dash(s: Option<&str>) -> &str {
    s.unwrap_or("-")
}

/// A time to the second, UTC ("2026-05-01 09:30:00Z").
fn short_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn state(u: &UserView) -> String {
    if u.disabled {
        "disabled".into()
    } else if let Some(until) = u.locked_until {
        format!("locked until {}", short_time(until))
    } else {
        "active".into()
    }
}

pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let mut out = std::io::stdout().lock();
    match args.command {
        UserCommand::Add {
            login,
            account,
            staff,
            role,
            password_file,
            opts,
        } => {
            let role = match (role, staff) {
                (Some(r), _) => r,
                (None, false) => Role::Customer,
                (None, true) => {
                    return Err(
                        BadInput("--staff needs --role reviewer or --role admin".into()).into(),
                    )
                }
            };
            let (password, made) = password(password_file.as_deref())?;
            let client = ApiClient::new(&opts.socket);
            let request = NewUserRequest {
                login,
                account,
                role,
                password: password.clone(),
            };
            let user = rt.block_on(client.user_add(&request))?;
            if opts.json {
                let mut v = serde_json::to_value(&user)?;
                if made {
                    v["initial_password"] = serde_json::Value::String(password);
                }
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
                return Ok(());
            }
            writeln!(
                out,
                "user {} ({}{}) added; the password must be changed at the first login",
                user.login,
                user.role.as_str(),
                user.account
                    .as_deref()
                    .map(|a| format!(" of account {a}"))
                    .unwrap_or_default()
            )?;
            if made {
                writeln!(out, "initial password (shown this once):\n{password}")?;
            }
            Ok(())
        }
        UserCommand::List { account, opts } => {
            let client = ApiClient::new(&opts.socket);
            let list = rt.block_on(client.user_list(account.as_deref()))?;
            if opts.json {
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<20} {:<16} {:<9} {:<12} {:<20} STATE",
                "LOGIN", "ACCOUNT", "ROLE", "MUST CHANGE", "LAST LOGIN"
            )?;
            for u in &list.users {
                let last = u.last_login.map(short_time);
                writeln!(
                    out,
                    "{:<20} {:<16} {:<9} {:<12} {:<20} {}",
                    u.login,
                    or_dash(u.account.as_deref()),
                    u.role.as_str(),
                    if u.must_change_password { "yes" } else { "no" },
                    or_dash(last.as_deref()),
                    state(u)
                )?;
            }
            Ok(())
        }
        UserCommand::Passwd {
            login,
            password_file,
            opts,
        } => {
            let (password, made) = password(password_file.as_deref())?;
            let client = ApiClient::new(&opts.socket);
            rt.block_on(client.user_reset_password(&login, &password))?;
            writeln!(
                out,
                "password of {login} set; it must be changed at the next login (sessions ended)"
            )?;
            if made {
                writeln!(out, "new password (shown this once):\n{password}")?;
            }
            Ok(())
        }
        UserCommand::Disable { login, opts } => {
            let client = ApiClient::new(&opts.socket);
            rt.block_on(client.user_set_disabled(&login, true))?;
            writeln!(out, "user {login} disabled (its sessions ended)")?;
            Ok(())
        }
        UserCommand::Enable { login, opts } => {
            let client = ApiClient::new(&opts.socket);
            rt.block_on(client.user_set_disabled(&login, false))?;
            writeln!(out, "user {login} enabled")?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_files_give_their_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "long enough pw\r\nsecond\n").unwrap();
        assert_eq!(read_password(&path).unwrap(), "long enough pw");
        std::fs::write(&path, "short\n").unwrap();
        let err = read_password(&path).unwrap_err();
        assert!(
            err.is::<BadInput>() && !err.to_string().contains("short"),
            "{err}"
        );
    }
}
