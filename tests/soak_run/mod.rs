//! The soak program (issue 8): the real daemon binary and the virtual modem bank, N messages (a
//! third concatenated, some to PHS area-code numbers), random modem faults from the bank's
//! repertoire plus `kill -9` of the daemon at random moments, until every message is final or
//! honestly `unknown`. Then it judges from what the virtual network received (events.jsonl) and
//! from the store: no part reached the network twice (nobody retried by hand here); no accepted
//! message lost or stuck; `unknown` parts within their bound; every part's credit in the state
//! its part says (sent -> committed, not sent -> refunded, unknown -> still reserved);
//! `smsgate log verify` passes. It returns the figures as one line.
//!
//! Used by tests/soak.rs (a short form in CI) and benches/soak.rs (the full run README quotes).
//! What must always hold: every wait has a deadline; every child process dies with its guard.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smsgate::api::types::{MessageId, MessageState, SendRequest};

use super::support::{duplicates, recipient, wait_for, write_config_with, Daemon, Sim, BIN};

/// What one soak run does.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub messages: usize,
    pub crashes: usize,
    pub modems: usize,
    pub seed: u64,
    /// Bound on the whole run, faults and settling included.
    pub deadline: Duration,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    pub attempted: usize,
    pub accepted: usize,
    pub parts: usize,
    pub submitted: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub delivered: usize,
    pub sent: usize,
    pub failed: usize,
    pub unknown_parts: usize,
    pub unknown_bound: usize,
    pub crashes: usize,
    pub faults: usize,
    pub committed: i64,
    pub reserved: i64,
    pub refunded: i64,
    pub credit_mismatches: usize,
    pub log_verified: bool,
    pub seconds: f64,
}

impl SoakReport {
    /// The one line the program prints.
    pub fn line(&self) -> String {
        format!(
            "soak: {} messages attempted, {} accepted ({} parts); network got {} submits, \
             {} duplicates, {} lost; {} delivered, {} sent, {} failed, {} unknown parts \
             (bound {}); {} crashes, {} faults; credit committed {} reserved {} refunded {}, \
             {} mismatches; log verify {}; {:.1} s",
            self.attempted,
            self.accepted,
            self.parts,
            self.submitted,
            self.duplicates,
            self.lost,
            self.delivered,
            self.sent,
            self.failed,
            self.unknown_parts,
            self.unknown_bound,
            self.crashes,
            self.faults,
            self.committed,
            self.reserved,
            self.refunded,
            self.credit_mismatches,
            if self.log_verified { "ok" } else { "FAILED" },
            self.seconds
        )
    }

    /// Whether the promise held.
    pub fn holds(&self) -> bool {
        self.duplicates == 0
            && self.lost == 0
            && self.unknown_parts <= self.unknown_bound
            && self.credit_mismatches == 0
            && self.log_verified
    }
}

/// A metered account (the soak checks the ledger too), a short send timeout (late answers).
fn write_config(dir: &Path, ports_glob: &str) {
    let uid = nix::unistd::getuid().as_raw();
    let accounts = format!("[[accounts]]\nname = \"soak\"\nuids = [{uid}]\n");
    write_config_with(dir, ports_glob, "send_timeout = \"2s\"", &accounts);
}

/// The i-th recipient: mostly mobiles, every seventh a PHS/fixed area-code number.
fn soak_recipient(i: usize) -> String {
    if i % 7 == 3 {
        format!("0755{:08}", 20_000_000 + i)
    } else {
        recipient(i)
    }
}

/// A third of the requests carry a text over 70 UCS2 characters (two concatenated parts).
fn soak_text(i: usize) -> String {
    if (i / 10) % 3 == 0 {
        format!(
            "【浸泡测试】尊敬的客户{i}：您的订单已经发货，预计两天内送达，请保持电话畅通。\
             如有疑问请联系客服，我们将竭诚为您服务。收货时请当面检查外包装是否完好，\
             如有破损请拒收。回T退订"
        )
    } else {
        format!("【浸泡测试】验证码 {:06}，5分钟内有效。", i % 1_000_000)
    }
}

/// One random fault on one random modem, through `sim ctl`.
fn random_fault(sim: &Sim, rng: &mut StdRng) -> Vec<String> {
    let m = rng.random_range(0..sim.modems).to_string();
    let args: Vec<&str> = match rng.random_range(0..9) {
        0 => vec!["unplug", "--modem", &m, "--for", "800ms"],
        1 => vec!["unplug", "--modem", &m, "--after-submit", "--for", "800ms"],
        2 => vec!["hang", "--modem", &m, "--for", "1500ms"],
        3 => vec!["garbage", "--modem", &m],
        4 => vec!["fail", "--modem", &m, "--cms", "38", "--once"],
        5 => vec!["fail", "--modem", &m, "--cms", "332", "--once"],
        6 => vec!["late", "--modem", &m, "--by", "2500ms"],
        7 => vec!["reboot", "--modem", &m, "--for", "300ms"],
        _ => vec!["fail", "--modem", &m, "--cms", "21", "--once"],
    };
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // A fault may be refused while its modem is unplugged; that is fine.
    let _ = std::process::Command::new(BIN)
        .args(["sim", "ctl", "--dir"])
        .arg(&sim.dir)
        .args(&refs)
        .output();
    args
}

/// Runs one soak in `dir`. Panics only on harness failures (a process that cannot start);
/// the promise itself is judged by the returned report.
pub async fn run(dir: &Path, opts: &SoakOptions) -> SoakReport {
    let started = Instant::now();
    let deadline = started + opts.deadline;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let sim = Sim::start_with(&dir.join("bank"), opts.modems, "30ms");
    write_config(dir, &sim.ports_glob());
    let mut daemon = Daemon::start(dir, &sim);
    daemon.wait_ready(opts.modems as u32).await;
    let credit = daemon.cli(&[
        "credit",
        "add",
        "--account",
        "soak",
        "--messages",
        &(opts.messages * 4).to_string(),
    ]);
    assert!(
        credit.status.success(),
        "credit add: {}",
        String::from_utf8_lossy(&credit.stderr)
    );

    let mut report = SoakReport {
        attempted: opts.messages,
        ..SoakReport::default()
    };
    let mut accepted: Vec<MessageId> = Vec::new();
    // Crash moments spread over the submission (by message index), and faults between them.
    let mut crash_at: BTreeSet<usize> = BTreeSet::new();
    while crash_at.len() < opts.crashes.min(opts.messages / 10) {
        crash_at.insert(rng.random_range(1..opts.messages / 10) * 10);
    }
    let mut i = 0;
    while i < opts.messages && Instant::now() < deadline {
        let k = (opts.messages - i).min(10);
        let to: Vec<String> = (i..i + k).map(soak_recipient).collect();
        let request = SendRequest {
            to,
            text: soak_text(i),
            report: true,
            validity: None,
            not_before: None,
            priority: Default::default(),
            account: None,
            sender: None,
        };
        match daemon.client().send(&request).await {
            Ok(resp) => accepted.extend(resp.ids),
            // The daemon may be between a kill and its restart: this request's fate is
            // whatever the store says (it is not sent again, so no duplicate message).
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        i += k;
        if rng.random_bool(0.3) {
            random_fault(&sim, &mut rng);
            report.faults += 1;
        }
        if crash_at.contains(&i) {
            // Let some sends get on the air first, so the kill lands mid-send.
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
            daemon.kill9();
            report.crashes += 1;
            daemon = Daemon::start(dir, &sim);
            daemon.wait_ready(1).await;
        }
    }
    // Faults end; every modem is itself again; everything settles.
    for m in 0..opts.modems {
        let _ = std::process::Command::new(BIN)
            .args(["sim", "ctl", "--dir"])
            .arg(&sim.dir)
            .args(["recover", "--modem", &m.to_string()])
            .output();
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(30));
    let database = daemon.database.clone();
    let settled = tokio::time::timeout(
        left,
        wait_for("every message final or unknown", left, || {
            let database = database.clone();
            async move { (unsettled(&database) == Some(0)).then_some(()) }
        }),
    )
    .await;
    if settled.is_err() {
        eprintln!(
            "soak: not everything settled in time:\n{}",
            daemon.log_tail()
        );
    }
    // What the store and the network say.
    let submits = sim.submits();
    report.submitted = submits.len();
    report.duplicates = duplicates(&submits).len();
    let conn = rusqlite::Connection::open_with_flags(
        &daemon.database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database");
    let ids: BTreeSet<i64> = conn
        .prepare("SELECT id FROM messages")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    report.accepted = ids.len();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for id in &accepted {
        if !ids.contains(&(id.0 as i64)) {
            report.lost += 1;
        }
    }
    for (state, n) in conn
        .prepare("SELECT state, count(*) FROM messages GROUP BY state")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
        .map(Result::unwrap)
    {
        states.insert(state, n as usize);
    }
    // Messages neither final nor held by an unknown part are stuck: counted as lost.
    drop(conn);
    report.lost += unsettled(&daemon.database).unwrap_or(i64::MAX) as usize;
    let conn = rusqlite::Connection::open_with_flags(
        &daemon.database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database");
    report.delivered = *states.get(MessageState::Delivered.as_str()).unwrap_or(&0);
    report.sent = *states.get("sent").unwrap_or(&0);
    report.failed = *states.get("failed").unwrap_or(&0);
    report.parts = conn
        .query_row("SELECT count(*) FROM parts", [], |r| r.get::<_, i64>(0))
        .unwrap() as usize;
    report.unknown_parts = conn
        .query_row(
            "SELECT count(*) FROM parts WHERE state = 'unknown'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as usize;
    // At most one part per modem per crash, plus one per fault that can leave a part's fate
    // open (a port gone after the PDU, a hang, an ambiguous answer, a late answer).
    report.unknown_bound = opts.modems * (report.crashes + 1) + report.faults;
    // Every part's credit in the state its part says (the latest round of each part).
    let mut credit: BTreeMap<String, i64> = BTreeMap::new();
    for (state, n) in conn
        .prepare("SELECT state, count(*) FROM credit_reservations GROUP BY state")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
        .map(Result::unwrap)
    {
        credit.insert(state, n);
    }
    report.committed = *credit.get("committed").unwrap_or(&0);
    report.reserved = *credit.get("reserved").unwrap_or(&0);
    report.refunded = *credit.get("refunded").unwrap_or(&0);
    let mismatches: i64 = conn
        .query_row(
            "SELECT count(*) FROM parts p
             JOIN credit_reservations c ON c.message_id = p.message_id AND c.part_seq = p.seq
             WHERE c.round = (SELECT max(round) FROM credit_reservations d
                              WHERE d.message_id = c.message_id AND d.part_seq = c.part_seq)
               AND NOT (
                 (p.state IN ('sent', 'delivered') AND c.state = 'committed')
                 OR (p.state = 'failed' AND p.sent_at IS NOT NULL AND c.state = 'committed')
                 OR (p.state IN ('failed', 'expired', 'cancelled') AND p.sent_at IS NULL
                     AND c.state = 'refunded')
                 OR (p.state IN ('queued', 'sending', 'unknown') AND c.state = 'reserved'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let unreserved: i64 = conn
        .query_row(
            "SELECT count(*) FROM parts p WHERE NOT EXISTS (SELECT 1 FROM credit_reservations c
                 WHERE c.message_id = p.message_id AND c.part_seq = p.seq)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    report.credit_mismatches = (mismatches + unreserved) as usize;
    drop(conn);
    let verify = std::process::Command::new(BIN)
        .args(["log", "verify", "--database"])
        .arg(&daemon.database)
        .output()
        .expect("run log verify");
    report.log_verified = verify.status.success();
    if !verify.status.success() {
        eprintln!(
            "soak: log verify: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

/// Messages that are neither final nor waiting on an `unknown` part (read from the file; None
/// while it cannot be read).
fn unsettled(database: &Path) -> Option<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row(
        "SELECT count(*) FROM messages m
         WHERE m.state IN ('queued', 'scheduled', 'sending')
           AND NOT EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id
                             AND p.state = 'unknown')",
        [],
        |r| r.get(0),
    )
    .ok()
}
