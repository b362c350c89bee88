//! The command tree of the `smsgate` binary (clap). Each subcommand lives in its own file and
//! is a thin layer over the library: it parses, calls, and prints. Errors reach [`main`] as
//! `anyhow::Error`; they become one line on stderr and a non-zero exit code. An error that wraps
//! [`BadInput`] exits with status 2 (the user gave something malformed), anything else with 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin;
pub mod backup;
pub mod client;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diag;
pub mod diag_cmpp;
pub mod key;
pub mod pdu;
pub mod sim;
pub mod user;
pub mod web;
pub mod webhook;

/// smsgate: business SMS through banks of GSM/PHS modems.
#[derive(Debug, Parser)]
#[command(name = "smsgate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway daemon (what systemd starts).
    Daemon(daemon::DaemonArgs),
    /// Run the network front end: the network API with API keys on `web.listen` (TLS), talking
    /// to the daemon through its socket (smsgate-web.service).
    Web(web::WebArgs),
    /// Try smsgate with no hardware: the daemon and a virtual modem bank in a temporary
    /// directory, a few messages sent and followed to delivery.
    Demo(demo::DemoArgs),
    /// Encode, decode and count SMS PDUs (3GPP TS 23.040).
    Pdu(pdu::PduArgs),
    /// Send SMS through the daemon: --to NUMBER... --text TEXT, or a --file batch.csv.
    Send(client::SendArgs),
    /// Show a message's state and its parts.
    Status(client::IdArgs),
    /// Cancel a message that has not started sending.
    Cancel(client::IdArgs),
    /// Send again a message whose parts are unknown or failed (admins).
    Retry(client::IdArgs),
    /// Settle a message whose parts are unknown: --sent (credit used) or --not-sent (credit
    /// refunded) (admins).
    Settle(client::SettleArgs),
    /// List modem ports and their SIMs: state, signal, counters, quota left.
    Modems(client::ModemsArgs),
    /// List carrier gateways (106 numbers, CMPP) and their links: state, window in use,
    /// submits, results by code, last error.
    Gateways(client::ModemsArgs),
    /// Show received SMS (replies, unsubscribe words).
    Inbox(client::InboxArgs),
    /// Run a virtual modem bank on pseudo-terminals, or control a running one (`sim ctl`).
    Sim(sim::SimArgs),
    /// Probe serial ports for a technician: baud, modem, SIM, signal, network, who holds a
    /// port, optionally a test SMS; a verdict and hint per port (no daemon needed).
    Diag(diag::DiagArgs),
    /// Customer accounts (admins): add, list.
    Account(admin::AccountArgs),
    /// Credit lots (admins): add, show.
    Credit(admin::CreditArgs),
    /// The review queue (admins): list, approve, reject [--violation].
    Review(admin::ReviewArgs),
    /// Account and number blacklists (admins): list, add, remove.
    Blacklist(admin::BlacklistArgs),
    /// API keys of the network API (admins): add (printed once), list, revoke.
    Key(key::KeyArgs),
    /// Webhooks of accounts (admins): set (prints the signing secret once), remove, list.
    Webhook(webhook::WebhookArgs),
    /// Users of the web console (admins): add (a random initial password printed once), list,
    /// passwd, disable, enable.
    User(user::UserArgs),
    /// The audit log, read from the database file: export, verify.
    Log(admin::LogArgs),
    /// The configuration: `config check` prints it with defaults, errors and warnings.
    Config(config::ConfigArgs),
    /// Copy the database while the daemon runs (SQLite online backup), then check the copy.
    Backup(backup::BackupArgs),
    /// Replace the database with a backup (the daemon stopped); the current file is kept aside.
    Restore(backup::RestoreArgs),
}

/// A user-supplied value was malformed: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon sets up logging itself, at the level its configuration names.
    if !matches!(cli.command, Command::Daemon(_) | Command::Web(_)) {
        init_tracing("warn");
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("smsgate: {err:#}");
            if err.chain().any(|e| e.is::<BadInput>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Daemon(args) => daemon::run(args),
        Command::Web(args) => web::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Pdu(args) => pdu::run(args),
        Command::Send(args) => client::send(args),
        Command::Status(args) => client::status(args),
        Command::Cancel(args) => client::cancel(args),
        Command::Retry(args) => client::retry(args),
        Command::Settle(args) => client::settle(args),
        Command::Modems(args) => client::modems(args),
        Command::Gateways(args) => client::gateways(args),
        Command::Inbox(args) => client::inbox(args),
        Command::Sim(args) => sim::run(args),
        Command::Diag(args) => diag::run(args),
        Command::Account(args) => admin::account(args),
        Command::Credit(args) => admin::credit(args),
        Command::Review(args) => admin::review(args),
        Command::Blacklist(args) => admin::blacklist(args),
        Command::Key(args) => key::run(args),
        Command::Webhook(args) => webhook::run(args),
        Command::User(args) => user::run(args),
        Command::Log(args) => admin::log(args),
        Command::Config(args) => config::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
    }
}

/// Logs go to stderr; `SMSGATE_LOG` (tracing's env-filter syntax) sets the level, default warn
/// for the client commands. Full numbers and texts are never logged at info level or above.
pub(crate) fn init_tracing(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SMSGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
