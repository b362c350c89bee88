//! `smsgate key add|list|revoke` (admins): the API keys of the network API (`smsgate web`),
//! through the daemon's socket (`api::admin` key routes).
//!
//! What must always hold: `key add` prints the new key once, on stdout, and nowhere else (the
//! daemon keeps only its hash); `list` shows prefixes, never keys.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::ClientOpts;
use crate::api::admin::NewKeyRequest;
use crate::api::client::ApiClient;

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an API key for an account; the key is printed once and cannot be shown again.
    Add {
        #[arg(long)]
        account: String,
        /// What the key is for, e.g. "erp".
        #[arg(long)]
        name: String,
        /// Addresses or CIDRs the key may be used from (repeat); none: any address.
        #[arg(long = "allow-ip")]
        allow_ips: Vec<String>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// List API keys (of one account): id, name, prefix, allow-list, revoked.
    List {
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Revoke an API key by id; it stops working at once.
    Revoke {
        id: i64,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
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

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn allow_list(v: &Value) -> String {
    match v.as_array() {
        Some(a) if !a.is_empty() => a.iter().map(text).collect::<Vec<_>>().join(","),
        _ => "any".into(),
    }
}

pub fn run(args: KeyArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    match args.command {
        KeyCommand::Add {
            account,
            name,
            allow_ips,
            opts,
        } => {
            let client = ApiClient::new(&opts.socket);
            let request = NewKeyRequest {
                account,
                name,
                allow_ips,
            };
            let v = rt.block_on(client.key_add(&request))?;
            print(&opts, &v, |v| {
                format!(
                    "key {} for account {} ({}), allowed from {}:\n{}\n\
                     Keep it now: it is not stored and cannot be shown again.\n",
                    text(&v["id"]),
                    text(&v["account"]),
                    text(&v["name"]),
                    allow_list(&v["allow_ips"]),
                    text(&v["key"]),
                )
            })
        }
        KeyCommand::List { account, opts } => {
            let client = ApiClient::new(&opts.socket);
            let v = rt.block_on(client.key_list(account.as_deref()))?;
            print(&opts, &v, |v| {
                let mut s = format!(
                    "{:>4}  {:<16} {:<20} {:<14} {:<24} {}\n",
                    "ID", "ACCOUNT", "NAME", "PREFIX", "ALLOW", "REVOKED"
                );
                for k in v["keys"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{:>4}  {:<16} {:<20} {:<14} {:<24} {}\n",
                        text(&k["id"]),
                        text(&k["account"]),
                        text(&k["name"]),
                        text(&k["prefix"]),
                        allow_list(&k["allow_ips"]),
                        text(&k["revoked_at"]),
                    ));
                }
                s
            })
        }
        KeyCommand::Revoke { id, opts } => {
            let client = ApiClient::new(&opts.socket);
            let v = rt.block_on(client.key_revoke(id))?;
            print(&opts, &v, |_| format!("key {id} revoked\n"))
        }
    }
}
