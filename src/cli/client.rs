//! The client commands of the `smsgate` binary: `send`, `status`, `cancel`, `retry`, `settle`,
//! `modems`, `inbox`. Each talks to the running daemon over its Unix socket through
//! [`crate::api::client::ApiClient`] and prints a readable table, or with `--json` exactly the
//! API's JSON (so scripts read the same shapes as README "API" documents).
//!
//! What must always hold: an error is one line on stderr (the server's message, or "cannot reach
//! smsgate at PATH: is the daemon running?") and a non-zero exit; a malformed batch file is
//! refused before anything is sent, naming its line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::BadInput;
use crate::api::client::ApiClient;
use crate::api::types::{
    parse_duration, InboxQuery, MessageId, MessageState, MessageView, ModemView, Priority, Refusal,
    SendRequest, SendResponse, MAX_RECIPIENTS,
};

/// Options every client command takes.
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// The daemon's API socket.
    #[arg(long, env = "SMSGATE_SOCKET", default_value = "/run/smsgate/api.sock")]
    pub socket: PathBuf,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Recipient numbers (repeat the flag or list several after it).
    #[arg(long, num_args = 1.., required_unless_present = "file")]
    pub to: Vec<String>,
    /// Message text; with --file, the text of rows that have none.
    #[arg(long)]
    pub text: Option<String>,
    /// A CSV batch of "number,text" rows (text optional when --text is given; a header row is
    /// allowed; quote texts that contain commas).
    #[arg(long, conflicts_with = "to")]
    pub file: Option<PathBuf>,
    /// Do not ask for delivery reports.
    #[arg(long)]
    pub no_report: bool,
    /// How long the network keeps trying, e.g. 6h or 2d (default: the daemon's).
    #[arg(long, value_parser = parse_duration)]
    pub validity: Option<jiff::SignedDuration>,
    /// Do not send before this instant (RFC 3339, e.g. 2026-05-01T09:00:00+08:00).
    #[arg(long)]
    pub not_before: Option<jiff::Timestamp>,
    /// low, normal or high.
    #[arg(long, default_value = "normal", value_parser = parse_priority)]
    pub priority: Priority,
    /// Admins: send for this account.
    #[arg(long)]
    pub account: Option<String>,
    /// The kind of sender number: mobile, phs or 106 (default: the account's).
    #[arg(long, value_parser = parse_sender)]
    pub sender: Option<crate::config::SenderKind>,
}

fn parse_sender(s: &str) -> Result<crate::config::SenderKind, String> {
    crate::config::SenderKind::parse(s).ok_or_else(|| format!("{s:?} is not mobile, phs or 106"))
}

#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// The message id (as `smsgate send` printed it).
    pub id: MessageId,
    /// Admins: the account the message belongs to.
    #[arg(long)]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("verdict").required(true).args(["sent", "not_sent"])))]
pub struct SettleArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// The message id whose `unknown` parts to settle.
    pub id: MessageId,
    /// They did reach the network (the recipient got it, the modem's log shows it): they
    /// become `sent` and their credit is used.
    #[arg(long)]
    pub sent: bool,
    /// They did not: they become `failed` (with the message's parts not sent yet) and their
    /// credit is refunded.
    #[arg(long)]
    pub not_sent: bool,
}

#[derive(Debug, Args)]
pub struct ModemsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
}

#[derive(Debug, Args)]
pub struct InboxArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Most messages to show (1..=1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Only messages after this inbox id.
    #[arg(long)]
    pub after: Option<u64>,
    /// Admins: another account's inbox.
    #[arg(long)]
    pub account: Option<String>,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    match s {
        "low" => Ok(Priority::Low),
        "normal" => Ok(Priority::Normal),
        "high" => Ok(Priority::High),
        _ => Err(format!("priority must be low, normal or high, not {s:?}")),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// One request of a send: a text and its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub text: String,
    pub to: Vec<String>,
}

/// Reads a batch CSV: "number,text" rows; a row without text takes `default_text`. Rows with
/// the same text are grouped (in order of first appearance) so each text is one request per
/// 10,000 recipients. The error names the line.
pub fn parse_batch(csv: &str, default_text: Option<&str>) -> Result<Vec<Batch>, BadInput> {
    let mut batches: Vec<Batch> = Vec::new();
    for (n, line) in csv.lines().enumerate() {
        let lineno = n + 1;
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(line).map_err(|e| BadInput(format!("line {lineno}: {e}")))?;
        let number = fields.first().map(|f| f.trim()).unwrap_or("");
        if lineno == 1 && !number.bytes().any(|b| b.is_ascii_digit()) {
            continue; // a header such as "number,text"
        }
        if fields.len() > 2 {
            return Err(BadInput(format!(
                "line {lineno}: expected \"number,text\" but found {} fields (quote texts that \
                 contain commas)",
                fields.len()
            )));
        }
        if number.is_empty() {
            return Err(BadInput(format!("line {lineno}: the number is empty")));
        }
        let text = match fields
            .get(1)
            .map(|t| t.as_str())
            .filter(|t| !t.trim().is_empty())
        {
            Some(t) => t.to_owned(),
            None => default_text.map(str::to_owned).ok_or_else(|| {
                BadInput(format!(
                    "line {lineno}: no text (give one in the row or with --text)"
                ))
            })?,
        };
        match batches.iter_mut().find(|b| b.text == text) {
            Some(b) => b.to.push(number.to_owned()),
            None => batches.push(Batch {
                text,
                to: vec![number.to_owned()],
            }),
        }
    }
    if batches.is_empty() {
        return Err(BadInput("the batch file has no rows".into()));
    }
    Ok(batches)
}

/// Splits one CSV line (RFC 4180 quoting: "a ""quoted"" text"; no line breaks inside fields).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

pub fn send(args: SendArgs) -> anyhow::Result<()> {
    let batches = match &args.file {
        Some(path) => {
            let csv = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_batch(&csv, args.text.as_deref())?
        }
        None => {
            let text = args
                .text
                .clone()
                .ok_or_else(|| BadInput("--text is required with --to".into()))?;
            vec![Batch {
                text,
                to: args.to.clone(),
            }]
        }
    };
    let requests: Vec<SendRequest> = batches
        .iter()
        .flat_map(|b| {
            b.to.chunks(MAX_RECIPIENTS).map(|chunk| SendRequest {
                to: chunk.to_vec(),
                text: b.text.clone(),
                report: !args.no_report,
                validity: args.validity,
                not_before: args.not_before,
                priority: args.priority,
                account: args.account.clone(),
                sender: args.sender,
            })
        })
        .collect();
    let total: usize = requests.iter().map(|r| r.to.len()).sum();
    let client = ApiClient::new(&args.opts.socket);
    let progress = Progress::new(total, args.file.is_some());
    let mut merged = SendResponse {
        ids: Vec::new(),
        parts: 0,
        refused: Vec::new(),
    };
    let mut numbers_accepted: Vec<String> = Vec::new();
    let rt = runtime()?;
    let mut done = 0;
    for request in &requests {
        let resp = rt.block_on(client.send(request)).map_err(|e| {
            progress.finish();
            if done > 0 {
                anyhow::anyhow!(
                    "{e} (after {} of {total} recipients were accepted: see the ids above)",
                    merged.ids.len()
                )
            } else {
                anyhow::Error::new(e)
            }
        });
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                if done > 0 {
                    print_send(&args.opts, &merged, &numbers_accepted)?;
                }
                return Err(e);
            }
        };
        numbers_accepted.extend(accepted_numbers(&request.to, &resp.refused));
        merged.ids.extend(resp.ids);
        merged.parts = merged.parts.max(resp.parts);
        merged.refused.extend(resp.refused);
        done += request.to.len();
        progress.update(done);
    }
    progress.finish();
    print_send(&args.opts, &merged, &numbers_accepted)
}

/// The recipients of a request that were not refused, in order (the ids answer them one to one).
fn accepted_numbers(to: &[String], refused: &[Refusal]) -> Vec<String> {
    let mut refused: Vec<&str> = refused.iter().map(|r| r.to.as_str()).collect();
    to.iter()
        .filter(|n| match refused.iter().position(|r| r == n) {
            Some(i) => {
                refused.swap_remove(i);
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}

fn print_send(opts: &ClientOpts, resp: &SendResponse, numbers: &[String]) -> anyhow::Result<()> {
    if opts.json {
        return print_json(resp);
    }
    let mut out = std::io::stdout().lock();
    let plural = if resp.parts == 1 { "" } else { "s" };
    writeln!(
        out,
        "accepted {} message{}, {} part{plural} each",
        resp.ids.len(),
        if resp.ids.len() == 1 { "" } else { "s" },
        resp.parts
    )?;
    if !resp.ids.is_empty() {
        writeln!(out, "{:<12} TO", "ID")?;
        let same = numbers.len() == resp.ids.len();
        for (i, id) in resp.ids.iter().enumerate() {
            let to = if same {
                numbers.get(i).map_or("", |s| s.as_str())
            } else {
                ""
            };
            writeln!(out, "{:<12} {to}", id.0)?;
        }
    }
    for r in &resp.refused {
        writeln!(out, "refused {}: {} ({})", r.to, r.message, r.code)?;
    }
    Ok(())
}

/// Plain progress on stderr for batches, only when stderr is a terminal (logs and pipes stay
/// clean).
struct Progress {
    total: usize,
    on: bool,
}

impl Progress {
    fn new(total: usize, batch: bool) -> Progress {
        Progress {
            total,
            on: batch && std::io::stderr().is_terminal(),
        }
    }

    fn update(&self, done: usize) {
        if !self.on {
            return;
        }
        let width = 30;
        let filled = (done * width)
            .checked_div(self.total)
            .unwrap_or(width)
            .min(width);
        eprint!(
            "\r[{}{}] {done}/{} recipients",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.total
        );
    }

    fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}

pub fn status(args: IdArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.opts.socket);
    let view = runtime()?.block_on(client.status(args.id, args.account.as_deref()))?;
    print_message(&args.opts, &view)
}

pub fn cancel(args: IdArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.opts.socket);
    let view = runtime()?.block_on(client.cancel(args.id, args.account.as_deref()))?;
    print_message(&args.opts, &view)
}

pub fn retry(args: IdArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.opts.socket);
    let view = runtime()?.block_on(client.retry(args.id))?;
    print_message(&args.opts, &view)
}

pub fn settle(args: SettleArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.opts.socket);
    // clap's group makes exactly one of --sent / --not-sent present.
    let view = runtime()?.block_on(client.settle(args.id, args.sent && !args.not_sent))?;
    print_message(&args.opts, &view)
}

fn time(t: Option<jiff::Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

fn print_message(opts: &ClientOpts, m: &MessageView) -> anyhow::Result<()> {
    if opts.json {
        return print_json(m);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "id         {}", m.id)?;
    writeln!(out, "to         {}", m.to)?;
    writeln!(out, "state      {}", m.state)?;
    writeln!(out, "created    {}", m.created)?;
    writeln!(out, "sent       {}", time(m.sent))?;
    writeln!(out, "delivered  {}", time(m.delivered))?;
    if let (Some(g), Some(src)) = (&m.gateway, &m.src_id) {
        writeln!(out, "sender     106 {src} via gateway {g}")?;
    } else if let Some(kind) = &m.sender {
        writeln!(out, "sender     {kind}")?;
    }
    writeln!(
        out,
        "{:<4} {:<16} {:<22} {:<4} ERROR",
        "PART", "STATE", "SIM", "MR"
    )?;
    for p in &m.parts {
        writeln!(
            out,
            "{:<4} {:<16} {:<22} {:<4} {}",
            p.seq,
            p.state.as_str(),
            match (&p.sim, &p.msg_id) {
                (Some(sim), _) => sim.as_str(),
                (None, Some(_)) => "gateway",
                (None, None) => "-",
            },
            p.mr.map_or_else(
                || p.msg_id
                    .clone()
                    .map_or_else(|| "-".to_owned(), |id| format!("Msg_Id {id}")),
                |mr| mr.to_string()
            ),
            p.error.as_deref().unwrap_or("-")
        )?;
    }
    if m.state == MessageState::Unknown {
        // The one state that waits for a person: say what they can do.
        writeln!(
            out,
            "\nA part may or may not have reached the network; smsgate will not send it again on \
             its own.\nAn admin decides: `smsgate retry {id}` sends it again (the recipient may \
             get it twice),\n`smsgate settle {id} --sent` records it as sent (credit used), \
             `smsgate settle {id} --not-sent` as not sent (credit refunded).",
            id = m.id
        )?;
    }
    Ok(())
}

pub fn gateways(args: ModemsArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.opts.socket);
    let list = runtime()?.block_on(client.gateways())?;
    if args.opts.json {
        return print_json(&list);
    }
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no gateways")?;
        return Ok(());
    }
    for g in &list {
        let results: Vec<String> = g.results.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        writeln!(
            out,
            "{} {} (Src_Id {}): {} of {} links up, window {}/{}, {} submits, results {}, {} reports, {} MO{}",
            g.name,
            g.address,
            g.src_id,
            g.links_up,
            g.links.len(),
            g.window_in_use,
            g.window as usize * g.links.len(),
            g.submits,
            if results.is_empty() { "-".to_string() } else { results.join(" ") },
            g.reports,
            g.mo,
            g.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        )?;
        for l in &g.links {
            writeln!(
                out,
                "  link {:<3} {:<10} {:<5} in flight {:>4}  written {:>8}  unconfirmed {:>4}  logins {:>3}  {}",
                l.link,
                l.state,
                l.version.as_deref().unwrap_or("-"),
                l.in_flight,
                l.written,
                l.unconfirmed,
                l.logins,
                l.last_error.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

pub fn modems(args: ModemsArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.opts.socket);
    let list = runtime()?.block_on(client.modems())?;
    if args.opts.json {
        return print_json(&list);
    }
    print_modems(&list)
}

fn print_modems(list: &[ModemView]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no modems")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<9} {:<22} {:<14} {:>7} {:>6} {:>6} {:<14} LAST ERROR",
        "PORT", "STATE", "ICCID", "OPERATOR", "SIGNAL", "SENT", "FAILED", "QUOTA m/h/d"
    )?;
    for m in list {
        let state = serde_json::to_value(m.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let quota = m.quota_left.as_ref().map_or_else(
            || "-".to_owned(),
            |q| format!("{}/{}/{}", q.minute, q.hour, q.day),
        );
        writeln!(
            out,
            "{:<16} {:<9} {:<22} {:<14} {:>7} {:>6} {:>6} {:<14} {}",
            m.port,
            state,
            m.iccid.as_deref().unwrap_or("-"),
            m.operator.as_deref().unwrap_or("-"),
            m.signal_dbm
                .map_or_else(|| "-".to_owned(), |s| format!("{s}dBm")),
            m.counters.sent,
            m.counters.failed,
            quota,
            m.last_error.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

pub fn inbox(args: InboxArgs) -> anyhow::Result<()> {
    let client = ApiClient::new(&args.opts.socket);
    let query = InboxQuery {
        limit: args.limit,
        after: args.after,
        account: args.account.clone(),
    };
    let list = runtime()?.block_on(client.inbox(&query))?;
    if args.opts.json {
        return print_json(&list);
    }
    let mut out = std::io::stdout().lock();
    if list.messages.is_empty() {
        writeln!(out, "inbox is empty")?;
        return Ok(());
    }
    writeln!(out, "{:<8} {:<26} {:<16} TEXT", "ID", "RECEIVED", "FROM")?;
    for m in &list.messages {
        // One line per message: a reply's line breaks would break the table.
        let text = m.text.replace(['\r', '\n'], " ");
        writeln!(
            out,
            "{:<8} {:<26} {:<16} {text}",
            m.id,
            m.received.to_string(),
            m.from
        )?;
    }
    if let Some(next) = list.next_after {
        writeln!(out, "(more: smsgate inbox --after {next})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_with_header_quotes_and_default_text() {
        let csv = "number,text\n13912345678,hello\n+8613800000000,\n\"13700000000\",\"a, \"\"quoted\"\" text\"\n13600000000,hello\n";
        let b = parse_batch(csv, Some("default")).unwrap();
        assert_eq!(
            b,
            vec![
                Batch {
                    text: "hello".into(),
                    to: vec!["13912345678".into(), "13600000000".into()]
                },
                Batch {
                    text: "default".into(),
                    to: vec!["+8613800000000".into()]
                },
                Batch {
                    text: "a, \"quoted\" text".into(),
                    to: vec!["13700000000".into()]
                },
            ]
        );
    }

    #[test]
    fn batch_errors_name_the_line() {
        let e = parse_batch("13912345678\n", None).unwrap_err();
        assert!(e.0.starts_with("line 1:"), "{}", e.0);
        let e = parse_batch("13912345678,a,b\n", None).unwrap_err();
        assert!(e.0.contains("3 fields"), "{}", e.0);
        let e = parse_batch("1,x\n2,\"open\n", None).unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{}", e.0);
        assert!(parse_batch("number,text\n", Some("x")).is_err());
    }

    #[test]
    fn accepted_numbers_skip_refused_once() {
        let to: Vec<String> = ["1", "2", "1", "3"].iter().map(|s| s.to_string()).collect();
        let refused = vec![Refusal {
            to: "1".into(),
            code: "opted_out".into(),
            message: "m".into(),
        }];
        assert_eq!(accepted_numbers(&to, &refused), vec!["2", "1", "3"]);
    }

    proptest::proptest! {
        #[test]
        fn batch_parser_never_panics(csv in "\\PC{0,300}") {
            let _ = parse_batch(&csv, Some("t"));
        }
    }
}
