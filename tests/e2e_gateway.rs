//! End-to-end tests of the carrier-gateway channel (issue 12) with the real binary: `smsgate sim
//! --cmpp` (the virtual modem bank and a virtual ISMG on real TCP) and `smsgate daemon` with a
//! `[[gateways]]` entry of two links and accounts whose default sender is "106". What the
//! gateway received is read from the sim's events.jsonl (`cmpp_submit`, one per accepted
//! SUBMIT), what the modems sent from its `cmgs` events.
//!
//! What must hold: each part goes out exactly once, on the channel its message asked for; a
//! link drop or a kill -9 mid-batch loses nothing and sends nothing twice, and every part the
//! gateway took ends `delivered` (the gateway sends the reports of a closed link on the next
//! one) or `unknown` (its SUBMIT_RESP was lost); an MO "TD" opts its sender out of
//! the account whose extension it was sent to, and only that one.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use smsgate::api::types::{MessageState, MessageView, SendRequest};
use smsgate::config::SenderKind;
use support::*;

/// The virtual bank with `modems` modems and a virtual ISMG on a free port; returns the guard
/// and the ISMG's address.
fn start_sim(dir: &Path, modems: usize, extra: &[&str]) -> (Sim, String) {
    let mut child = Command::new(BIN)
        .arg("sim")
        .args(["--modems", &modems.to_string(), "--dir"])
        .arg(dir)
        .args([
            "--latency",
            "50ms",
            "--report-delay",
            "100ms",
            "--seed",
            "7",
        ])
        .args(["--cmpp", "127.0.0.1:0"])
        .args(extra)
        .env_remove("SMSGATE_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn smsgate sim");
    let out = child.stdout.take().expect("sim stdout");
    let mut addr = None;
    for line in BufReader::new(out).lines() {
        let line = line.expect("sim stdout line");
        if let Some(a) = line.strip_prefix("cmpp ") {
            addr = Some(a.trim().to_string());
        }
        if line == "ready" {
            break;
        }
    }
    let addr = addr.expect("sim printed no cmpp address");
    (Sim::from_child(child, dir, modems), addr)
}

/// Config: the bank's ports, gateway "cmcc" (2 links) at `addr`, account "shop" (the test's
/// uid, default sender 106, may also use mobile, extension 42) and account "bank" (extension
/// 43, 106 only).
fn write_gateway_config(dir: &Path, sim: &Sim, addr: &str) {
    write_gateway_config_with(dir, sim, addr, "", "");
}

/// [`write_gateway_config`] with more keys for account "shop" and for the gateway.
fn write_gateway_config_with(dir: &Path, sim: &Sim, addr: &str, shop: &str, gateway: &str) {
    let secret = dir.join("cmcc.secret");
    std::fs::write(&secret, "secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let uid = nix::unistd::getuid().as_raw();
    let accounts = format!(
        r#"[[accounts]]
name = "shop"
uids = [{uid}]
unmetered = true
sender = "106"
senders = ["106", "mobile"]
gateway = "cmcc"
extension = "42"
{shop}

[[accounts]]
name = "bank"
unmetered = true
sender = "106"
gateway = "cmcc"
extension = "43"

[[gateways]]
name = "cmcc"
protocol = "cmpp3"
address = "{addr}"
sp_id = "901234"
secret_file = "{secret}"
src_id = "1069012345"
service_id = "MXX0000001"
connections = 2
window = 16
{gateway}
"#,
        secret = secret.display()
    );
    write_config_with(dir, &sim.ports_glob(), "", &accounts);
}

/// The `cmpp_submit` events: (dest, content hex) -> how many times, and the links used.
fn cmpp_submits(sim: &Sim) -> (BTreeMap<(String, String), usize>, Vec<Value>) {
    let events: Vec<Value> = sim
        .events()
        .into_iter()
        .filter(|e| e["event"] == "cmpp_submit")
        .collect();
    let mut keys = BTreeMap::new();
    for e in &events {
        let key = (
            e["dest"].as_str().unwrap_or_default().to_string(),
            e["content"].as_str().unwrap_or_default().to_string(),
        );
        *keys.entry(key).or_insert(0) += 1;
    }
    (keys, events)
}

fn mobile(i: usize) -> String {
    format!("139{:08}", 20_000_000 + i)
}

async fn wait_gateway_up(d: &Daemon, links: u32) {
    let client = d.client();
    let what = format!("{links} gateway links up (log:\n{})", d.log_tail());
    wait_for(&what, Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            let g = client.gateways().await.ok()?;
            (g.first()?.links_up >= links).then_some(())
        }
    })
    .await;
}

/// Settled after a drop: delivered, or a part `unknown` (written, never answered: not resent)
/// and none still waiting; never `sent` for good, because the gateway keeps each report it
/// could not deliver (or that was not acknowledged) and sends it on a new link.
fn settled_after_a_drop(m: &MessageView) -> bool {
    m.state == MessageState::Delivered
        || (m.parts.iter().any(|p| p.state == MessageState::Unknown)
            && m.parts
                .iter()
                .all(|p| matches!(p.state, MessageState::Delivered | MessageState::Unknown)))
}

/// The checks after a drop (or kill -9) once every message settled: no part submitted twice;
/// a message the gateway never got is `unknown` (its SUBMIT was written, so it is not resent);
/// and something was in flight. Returns how many messages are unknown.
fn check_after_a_drop(sim: &Sim, views: &[MessageView]) -> usize {
    let (keys, events) = cmpp_submits(sim);
    assert!(
        keys.values().all(|n| *n == 1),
        "a part submitted twice: {keys:?}"
    );
    let last11 = |s: &str| s[s.len().saturating_sub(11)..].to_string();
    let got: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| last11(e["dest"].as_str().unwrap_or_default()))
        .collect();
    let mut unknown = 0;
    for v in views {
        assert!(settled_after_a_drop(v), "{v:?}");
        if v.state != MessageState::Delivered {
            unknown += 1;
        } else {
            assert!(
                got.contains(&last11(&v.to)),
                "delivered, never submitted: {v:?}"
            );
        }
    }
    // The drop found something in flight: SUBMITs never answered, or reports not yet sent
    // or acknowledged that the gateway kept for the next link.
    let kept: u64 = sim
        .events()
        .iter()
        .filter(|e| e["event"] == "cmpp_reports_kept")
        .map(|e| e["reports"].as_u64().unwrap_or(0))
        .sum();
    assert!(unknown > 0 || kept > 0, "the drop found nothing in flight");
    unknown
}

fn with_sender(mut r: SendRequest, sender: SenderKind) -> SendRequest {
    r.sender = Some(sender);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_over_the_gateway_and_the_modems_each_part_once() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, addr) = start_sim(dir.path(), 2, &[]);
    write_gateway_config(dir.path(), &sim, &addr);
    let d = Daemon::start(dir.path(), &sim);
    d.wait_ready(2).await;
    wait_gateway_up(&d, 2).await;
    let client = d.client();

    // A kind the account may not use is refused, naming the kinds it may.
    let err = client
        .send(&with_sender(request(vec![mobile(0)], "x"), SenderKind::Phs))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("may not send from a phs number"), "{err}");

    let mut gateway_ids = Vec::new();
    let mut modem_ids = Vec::new();
    for i in 0..30 {
        let text = if i % 3 == 0 {
            long_text(i)
        } else {
            format!("【测试】您的验证码是 {i:06}，5分钟内有效。")
        };
        // The account's default sender (106), and every fourth message from a mobile number.
        let mut req = request(vec![mobile(i)], &text);
        if i % 4 == 3 {
            req = with_sender(req, SenderKind::Mobile);
        }
        let resp = client.send(&req).await.expect("send");
        assert_eq!(resp.ids.len(), 1, "{resp:?}");
        if i % 4 == 3 {
            modem_ids.extend(resp.ids);
        } else {
            gateway_ids.extend(resp.ids);
        }
    }
    let all: Vec<_> = gateway_ids.iter().chain(&modem_ids).copied().collect();
    let views = wait_messages(
        &client,
        &all,
        Duration::from_secs(60),
        "every message delivered",
        |m| m.state == MessageState::Delivered,
    )
    .await;
    let gateway_parts: usize = views
        .iter()
        .filter(|v| gateway_ids.contains(&v.id))
        .map(|v| v.parts.len())
        .sum();
    let modem_parts: usize = views
        .iter()
        .filter(|v| modem_ids.contains(&v.id))
        .map(|v| v.parts.len())
        .sum();

    // The views name the channel: gateway, Src_Id and each part's Msg_Id for 106.
    for v in &views {
        if gateway_ids.contains(&v.id) {
            assert_eq!(v.gateway.as_deref(), Some("cmcc"), "{v:?}");
            assert_eq!(v.src_id.as_deref(), Some("106901234542"), "{v:?}");
            assert!(
                v.parts
                    .iter()
                    .all(|p| p.msg_id.is_some() && p.sim.is_none()),
                "{v:?}"
            );
        } else {
            assert_eq!(
                (v.sender.as_deref(), v.gateway.as_deref()),
                (Some("mobile"), None)
            );
            assert!(
                v.parts
                    .iter()
                    .all(|p| p.msg_id.is_none() && p.sim.is_some()),
                "{v:?}"
            );
        }
    }
    let shown = d.cli(&["status", &gateway_ids[0].0.to_string()]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("106 106901234542 via gateway cmcc") && text.contains("Msg_Id"),
        "{text}"
    );

    let (keys, events) = cmpp_submits(&sim);
    assert_eq!(events.len(), gateway_parts, "one SUBMIT per gateway part");
    assert!(
        keys.values().all(|n| *n == 1),
        "a part submitted twice: {keys:?}"
    );
    assert!(events.iter().all(|e| e["src_id"] == "106901234542"));
    let links: std::collections::BTreeSet<_> =
        events.iter().map(|e| e["link"].to_string()).collect();
    assert!(links.len() >= 2, "the batch used one link only: {links:?}");
    // The modems sent exactly the others, none of them to the gateway's recipients twice.
    let cmgs = sim.submits();
    assert_eq!(cmgs.len(), modem_parts, "one AT+CMGS per modem part");
    assert!(duplicates(&cmgs).is_empty());

    let g = &client.gateways().await.unwrap()[0];
    assert_eq!(g.submits as usize, gateway_parts, "{g:?}");
    assert_eq!(
        g.results.get("0").copied().unwrap_or(0) as usize,
        gateway_parts
    );
    assert!(g.reports as usize >= gateway_parts, "{g:?}");
    let shown = d.cli(&["gateways"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("cmcc") && text.contains("2 of 2 links up"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_drop_mid_batch_loses_nothing_and_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    // A slow gateway: SUBMITs are in flight when the links drop.
    let (sim, addr) = start_sim(dir.path(), 0, &["--cmpp-latency", "100ms"]);
    write_gateway_config(dir.path(), &sim, &addr);
    let d = Daemon::start(dir.path(), &sim);
    wait_gateway_up(&d, 2).await;
    let client = d.client();
    let mut ids = Vec::new();
    for chunk in 0..6 {
        let to: Vec<String> = (chunk * 10..chunk * 10 + 10).map(mobile).collect();
        let resp = client
            .send(&request(to, "【测试】您的验证码是 123456，5分钟内有效。"))
            .await
            .expect("send");
        ids.extend(resp.ids);
    }
    wait_for("some SUBMITs accepted", Duration::from_secs(20), || {
        let n = cmpp_submits(&sim).1.len();
        async move { (n >= 5).then_some(()) }
    })
    .await;
    sim.ctl(&["cmpp-drop"]);
    // Every message ends delivered or with its part `unknown` (written, never answered: not
    // resent); none is lost in the queue, failed, or left `sent` without its report.
    let views = wait_messages(
        &client,
        &ids,
        Duration::from_secs(60),
        "every message delivered or unknown",
        settled_after_a_drop,
    )
    .await;
    let unknown = check_after_a_drop(&sim, &views);
    let (keys, events) = cmpp_submits(&sim);
    // Every message the gateway never got was sent after the drop, on a new link.
    assert_eq!(keys.len(), events.len());
    assert!(
        events.len() + unknown >= views.len(),
        "{} submits, {unknown} unknown, {} messages",
        events.len(),
        views.len()
    );
    let logins = sim
        .events()
        .iter()
        .filter(|e| e["event"] == "cmpp_login")
        .count();
    assert!(logins >= 3, "the links did not log in again: {logins}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_td_opts_its_sender_out_of_the_account_of_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, addr) = start_sim(dir.path(), 0, &[]);
    write_gateway_config(dir.path(), &sim, &addr);
    let d = Daemon::start(dir.path(), &sim);
    wait_gateway_up(&d, 1).await;
    let client = d.client();
    let who = mobile(7);
    // The reply goes to shop's extension (42), with a sub-extension after it.
    sim.ctl(&[
        "cmpp-mo",
        "--from",
        &who,
        "--to",
        "10690123454201",
        "--text",
        "TD",
    ]);
    let what = format!("the MO in the inbox (log:\n{})", d.log_tail());
    wait_for(&what, Duration::from_secs(20), || {
        let client = client.clone();
        async move {
            let inbox = client.inbox(&Default::default()).await.ok()?;
            inbox.messages.iter().any(|m| m.text == "TD").then_some(())
        }
    })
    .await;
    let shop = client
        .send(&request(vec![who.clone()], "【测试】hello"))
        .await
        .expect("send");
    assert!(shop.ids.is_empty(), "{shop:?}");
    assert_eq!(shop.refused[0].code, "opted_out", "{shop:?}");
    let mut to_bank = request(vec![who.clone()], "【测试】hello");
    to_bank.account = Some("bank".into());
    let bank = client.send(&to_bank).await.expect("send as bank");
    assert_eq!(bank.ids.len(), 1, "bank was opted out too: {bank:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_control_slows_the_gateway_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, addr) = start_sim(dir.path(), 0, &[]);
    write_gateway_config(dir.path(), &sim, &addr);
    let d = Daemon::start(dir.path(), &sim);
    wait_gateway_up(&d, 2).await;
    sim.ctl(&["cmpp-flow-control", "--rate", "0.5"]);
    let client = d.client();
    let mut ids = Vec::new();
    for chunk in 0..4 {
        let to: Vec<String> = (chunk * 10..chunk * 10 + 10).map(mobile).collect();
        ids.extend(
            client
                .send(&request(to, "【测试】验证码 4321"))
                .await
                .unwrap()
                .ids,
        );
    }
    wait_messages(
        &client,
        &ids,
        Duration::from_secs(90),
        "every message delivered despite flow control",
        |m| m.state == MessageState::Delivered,
    )
    .await;
    let (keys, events) = cmpp_submits(&sim);
    assert_eq!(events.len(), ids.len());
    assert!(keys.values().all(|n| *n == 1), "{keys:?}");
    let refused = sim
        .events()
        .iter()
        .filter(|e| e["event"] == "cmpp_submit_refused")
        .count();
    assert!(refused > 0, "the gateway never said flow control");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_account_goes_to_the_modems_while_its_gateway_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _) = start_sim(dir.path(), 1, &[]);
    // Nothing listens there: the gateway stays down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    write_gateway_config_with(
        dir.path(),
        &sim,
        &addr,
        "fallback = true",
        "fallback_after = \"1s\"",
    );
    let d = Daemon::start(dir.path(), &sim);
    d.wait_ready(1).await;
    let client = d.client();
    let shop = client
        .send(&request(vec![mobile(1), mobile(2)], "【测试】验证码 1"))
        .await
        .unwrap()
        .ids;
    let mut req = request(vec![mobile(3)], "【测试】验证码 2");
    req.account = Some("bank".into());
    let bank = client.send(&req).await.unwrap().ids;
    wait_messages(
        &client,
        &shop,
        Duration::from_secs(30),
        "shop's 106 messages delivered by the modems",
        |m| m.state == MessageState::Delivered,
    )
    .await;
    assert_eq!(sim.submits().len(), 2, "one AT+CMGS per fallback message");
    // bank did not allow it: its message waits for the gateway.
    let b = &views(&client, &bank).await[0];
    assert_eq!(b.state, MessageState::Queued, "{b:?}");
    assert!(cmpp_submits(&sim).1.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_gateway_batch_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, addr) = start_sim(dir.path(), 0, &["--cmpp-latency", "300ms"]);
    write_gateway_config(dir.path(), &sim, &addr);
    let mut d = Daemon::start(dir.path(), &sim);
    wait_gateway_up(&d, 2).await;
    let client = d.client();
    let mut ids = Vec::new();
    for chunk in 0..6 {
        let to: Vec<String> = (chunk * 10..chunk * 10 + 10).map(mobile).collect();
        ids.extend(
            client
                .send(&request(to, "【测试】验证码 99"))
                .await
                .unwrap()
                .ids,
        );
    }
    wait_for("some SUBMITs accepted", Duration::from_secs(20), || {
        let n = cmpp_submits(&sim).1.len();
        async move { (n >= 5).then_some(()) }
    })
    .await;
    d.kill9();
    let d = Daemon::start(dir.path(), &sim);
    wait_gateway_up(&d, 2).await;
    let client = d.client();
    // The reports the killed daemon never acknowledged come on the new links: nothing stays
    // `sent`.
    let views = wait_messages(
        &client,
        &ids,
        Duration::from_secs(60),
        "every message delivered or unknown after the restart",
        settled_after_a_drop,
    )
    .await;
    let unknown = check_after_a_drop(&sim, &views);
    let (_, events) = cmpp_submits(&sim);
    assert!(events.len() >= views.len() - unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_before_their_submit_resp_still_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, addr) = start_sim(dir.path(), 0, &["--cmpp-latency", "50ms"]);
    write_gateway_config(dir.path(), &sim, &addr);
    let d = Daemon::start(dir.path(), &sim);
    wait_gateway_up(&d, 2).await;
    sim.ctl(&["cmpp-reports-first", "on"]);
    let client = d.client();
    let to: Vec<String> = (0..10).map(mobile).collect();
    let ids = client.send(&request(to, &long_text(1))).await.unwrap().ids;
    wait_messages(
        &client,
        &ids,
        Duration::from_secs(30),
        "every message delivered though each report came first",
        |m| m.state == MessageState::Delivered,
    )
    .await;
    let (keys, events) = cmpp_submits(&sim);
    assert!(keys.values().all(|n| *n == 1), "{keys:?}");
    assert_eq!(events.len(), 20, "two parts per message");
}

#[test]
fn config_check_names_bad_channels_and_never_shows_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("cmcc.secret");
    std::fs::write(&secret, "s3cret-value\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let gateway = format!(
        "[[gateways]]\nname = \"cmcc\"\naddress = \"127.0.0.1:7890\"\nsp_id = \"901234\"\n\
         secret_file = \"{}\"\nsrc_id = \"1069012345\"\n",
        secret.display()
    );
    let check = |accounts: &str, mode: u32| {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
        let path = dir.path().join("smsgate.toml");
        std::fs::write(
            &path,
            format!(
                "socket = \"{0}/api.sock\"\ndatabase = \"{0}/db\"\n{accounts}\n{gateway}",
                dir.path().display()
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args(["config", "check", "--json", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("s3cret"), "the secret was shown: {text}");
        (out.status.success(), text)
    };
    let (ok, text) = check(
        "[[accounts]]\nname = \"shop\"\nsender = \"106\"\ngateway = \"cmcc\"\nextension = \"42\"",
        0o600,
    );
    assert!(ok, "{text}");
    let (ok, text) = check(
        "[[accounts]]\nname = \"shop\"\nsender = \"106\"\ngateway = \"cmcc\"",
        0o644,
    );
    assert!(!ok && text.contains("0600 or 0640"), "{text}");
    for (accounts, want) in [
        ("sender = \"106\"\ngateway = \"cmpp\"", "unknown gateway"),
        ("sender = \"106\"", "needs a gateway"),
        (
            "sender = \"106\"\ngateway = \"cmcc\"\nextension = \"x1\"",
            "must be digits",
        ),
        (
            "sender = \"106\"\ngateway = \"cmcc\"\nextension = \"12345678901234\"",
            "more than the 21",
        ),
    ] {
        let (ok, text) = check(&format!("[[accounts]]\nname = \"shop\"\n{accounts}"), 0o600);
        assert!(!ok && text.contains(want), "{accounts}: {text}");
    }
}
