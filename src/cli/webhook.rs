//! `smsgate webhook set|remove|list` (admins): each account's webhook (pushed delivery reports
//! and replies, POSTed by `smsgate web`), through the daemon's socket.
//!
//! What must always hold: `set` prints the new signing secret once (the customer verifies
//! `X-Smsgate-Signature` with it); `list` shows only the secret's first characters.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::Value;

use super::client::ClientOpts;
use crate::api::admin::WebhookRequest;
use crate::api::client::ApiClient;

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Set an account's webhook URL (http:// or https://) with a new signing secret.
    Set {
        #[arg(long)]
        account: String,
        #[arg(long)]
        url: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Remove an account's webhook (queued events wait until one is set again).
    Remove {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// List the accounts' webhooks.
    List {
        #[command(flatten)]
        opts: ClientOpts,
    },
}

pub fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (opts, v, plain): (ClientOpts, Value, fn(&Value) -> String) = match args.command {
        WebhookCommand::Set { account, url, opts } => {
            let body = WebhookRequest {
                account,
                url: Some(url),
            };
            let client = ApiClient::new(&opts.socket);
            let v = rt.block_on(client.call(Method::POST, "/v1/webhooks", Some(&body)))?;
            (opts, v, |v| {
                format!(
                    "webhook of {} set to {}; signing secret (shown once):\n{}\n",
                    v["account"].as_str().unwrap_or("-"),
                    v["url"].as_str().unwrap_or("-"),
                    v["secret"].as_str().unwrap_or("-"),
                )
            })
        }
        WebhookCommand::Remove { account, opts } => {
            let body = WebhookRequest { account, url: None };
            let client = ApiClient::new(&opts.socket);
            let v = rt.block_on(client.call(Method::POST, "/v1/webhooks", Some(&body)))?;
            (opts, v, |v| {
                format!(
                    "webhook of {} removed\n",
                    v["account"].as_str().unwrap_or("-")
                )
            })
        }
        WebhookCommand::List { opts } => {
            let client = ApiClient::new(&opts.socket);
            let v = rt.block_on(client.call(Method::GET, "/v1/webhooks", None::<&()>))?;
            (opts, v, |v| {
                let mut s = String::new();
                for w in v["webhooks"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{:<16} {} (secret {}...)\n",
                        w["account"].as_str().unwrap_or("-"),
                        w["url"].as_str().unwrap_or("-"),
                        w["secret_prefix"].as_str().unwrap_or("-"),
                    ));
                }
                s
            })
        }
    };
    let mut out = std::io::stdout().lock();
    if opts.json {
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", plain(&v))?;
    }
    Ok(())
}
