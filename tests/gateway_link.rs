//! The CMPP client link (`smsgate::gateway`) over real TCP against the virtual gateway of the
//! in-process sim bank: login 3.0 and the fallback to 2.0, a refused login reported as
//! permanent, a submit accepted and its report, the window of 16, flow control, a link drop
//! mid-batch (MaybeSent vs NotSent, then a reconnect), silence (response timeouts and the
//! ACTIVE_TEST verdict), reports before responses, MO in UCS2 and ASCII acknowledged only
//! after the consumer acked, the rate limit, TERMINATE on shutdown, and a secret that never
//! shows.

mod ismg_support;

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ismg_support::{ctl, events, start_ismg};
use smsgate::cmpp::{self, Body, Version};
use smsgate::gateway::{
    BoxedStream, Connector, GatewayConfig, GatewayEvent, GatewayHandle, GatewayLink,
    GatewayLinkError, GatewayPart, LinkState, PayloadFate, RateLimiter, SubmitClass, SubmitOutcome,
};
use smsgate::pdu::{encode_submit, Address, SubmitOptions};
use smsgate::sim::{Bank, IsmgConfig, IsmgControl};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::Receiver;

const SP: &str = "901234";
const SECRET: &str = "s3cret-Pa55";
const WAIT: Duration = Duration::from_secs(10);

async fn start(dir: &Path, tune: impl FnOnce(&mut IsmgConfig)) -> Bank {
    start_ismg(dir, SP, SECRET.as_bytes(), Duration::from_millis(100), tune).await
}

fn config(addr: SocketAddr) -> GatewayConfig {
    let mut c = GatewayConfig::new("cmcc", &addr.to_string(), SP, SECRET, "1069012345");
    c.service_id = "MXX0000001".into();
    c.reconnect_backoff = vec![Duration::from_millis(50)];
    c.refused_backoff = Duration::from_secs(60);
    c.response_timeout = Duration::from_secs(5);
    c.flow_control_pause = Duration::from_millis(10);
    c
}

fn part(to: &str, text: &str, report: bool) -> GatewayPart {
    let mut o = SubmitOptions::new(Address::parse_number(to).unwrap());
    o.status_report = report;
    GatewayPart::new(encode_submit(&o, text).unwrap()[0].hex(), "42")
}

async fn next_event(rx: &mut Receiver<GatewayEvent>) -> GatewayEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no gateway event within 10 s")
        .expect("event channel closed")
}

async fn wait_up(rx: &mut Receiver<GatewayEvent>) -> Version {
    loop {
        match next_event(rx).await {
            GatewayEvent::Up { version } => return version,
            GatewayEvent::Down { .. } => {}
            other => panic!("unexpected before Up: {other:?}"),
        }
    }
}

#[tokio::test]
async fn login_3_0_submit_accepted_then_its_report_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    assert_eq!(wait_up(&mut ev).await, Version::V30);
    assert_eq!(
        link.state(),
        LinkState::Up {
            version: Version::V30
        }
    );

    let out = link
        .submit(&part("+8613800138000", "您好", true))
        .await
        .unwrap();
    let SubmitOutcome::Accepted { msg_id } = out else {
        panic!("{out:?}")
    };
    assert_eq!(cmpp::MsgId::split(msg_id).gateway, 100_001);
    let GatewayEvent::Report(rep) = next_event(&mut ev).await else {
        panic!("expected a report")
    };
    assert_eq!(rep.msg_id, msg_id);
    assert_eq!(rep.stat, "DELIVRD");
    assert!(rep.delivered);
    assert_eq!(rep.dest_terminal_id, "13800138000");
    rep.ack.ack().await.unwrap();

    // What the gateway got: national destination, Src_Id with the extension, UCS2, fees.
    let subs = events(&bank, "cmpp_submit");
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["dest"], "13800138000");
    assert_eq!(subs[0]["src_id"], "106901234542");
    assert_eq!(subs[0]["msg_fmt"], 8);
    assert_eq!(subs[0]["registered_delivery"], 1);
    assert_eq!(subs[0]["service_id"], "MXX0000001");
    assert_eq!(subs[0]["content"], "60a8597d");
    assert_eq!(subs[0]["version"], "3.0");
    let st = link.stats();
    assert_eq!((st.written, st.results.get(&0).copied()), (1, Some(1)));

    // The secret shows nowhere.
    let shown = format!(
        "{:?} {:?} {:?}",
        config(bank.cmpp_addr().unwrap()),
        link,
        st
    );
    assert!(!shown.contains(SECRET), "{shown}");
    link.shutdown(Duration::from_secs(2)).await;
    assert_eq!(link.state(), LinkState::Stopped);
    bank.shutdown().await;
}

#[tokio::test]
async fn a_2_0_gateway_gets_a_2_0_login_after_version_too_high() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| c.max_version = Version::V20).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    assert_eq!(wait_up(&mut ev).await, Version::V20);
    let logins = events(&bank, "cmpp_login");
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert_eq!(
        (logins[0]["version"].as_str(), logins[0]["status"].as_u64()),
        (Some("0x30"), Some(4))
    );
    assert_eq!(
        (logins[1]["version"].as_str(), logins[1]["status"].as_u64()),
        (Some("0x20"), Some(0))
    );
    let out = link
        .submit(&part("13800138000", "hi", false))
        .await
        .unwrap();
    assert!(matches!(out, SubmitOutcome::Accepted { .. }), "{out:?}");
    assert_eq!(events(&bank, "cmpp_submit")[0]["version"], "2.0");
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_permanent_and_said_why() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let mut cfg = config(bank.cmpp_addr().unwrap());
    cfg.secret = "not-the-secret".into();
    let (link, mut ev) = GatewayLink::spawn(cfg);
    let GatewayEvent::Down {
        reason,
        permanent,
        retry_in,
    } = next_event(&mut ev).await
    else {
        panic!("expected Down")
    };
    assert!(permanent);
    assert_eq!(retry_in, Duration::from_secs(60), "long back-off");
    assert!(reason.contains("wrong shared secret"), "{reason}");
    assert!(!reason.contains("not-the-secret"));
    // A submit meanwhile is refused at once, provably unsent.
    let e = link
        .submit(&part("13800138000", "x", false))
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayLinkError::Down(_)), "{e:?}");
    assert_eq!(e.payload_fate(), PayloadFate::NotSent);
    // And it does not hammer the gateway: one login only.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events(&bank, "cmpp_login").len(), 1);
    link.shutdown(Duration::from_secs(1)).await;
    bank.shutdown().await;
}

async fn submit_many(
    link: &GatewayHandle,
    n: usize,
) -> Vec<Result<SubmitOutcome, GatewayLinkError>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let link = link.clone();
        set.spawn(async move {
            let p = part(&format!("1380013{i:04}"), "batch", false);
            (i, link.submit(&p).await)
        });
    }
    let mut out: Vec<_> = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[tokio::test]
async fn a_window_of_16_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| c.latency = Duration::from_millis(400)).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    wait_up(&mut ev).await;
    let l2 = link.clone();
    let batch = tokio::spawn(async move { submit_many(&l2, 40).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(link.stats().in_flight, 16, "the window is full, not more");
    let results = batch.await.unwrap();
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(SubmitOutcome::Accepted { .. }))));
    let st = ctl(&bank, IsmgControl::Status).await;
    assert_eq!((st.submits_accepted, st.window_full), (40, 0));
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn flow_control_slows_and_retries_then_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    wait_up(&mut ev).await;
    ctl(&bank, IsmgControl::FlowControl { rate: 0.5 }).await;
    let results = submit_many(&link, 30).await;
    let accepted = results
        .iter()
        .filter(|r| matches!(r, Ok(SubmitOutcome::Accepted { .. })))
        .count();
    assert!(
        results.iter().all(|r| matches!(
            r,
            Ok(SubmitOutcome::Accepted { .. } | SubmitOutcome::FlowControl { .. })
        )),
        "{results:?}"
    );
    let st = ctl(&bank, IsmgControl::Status).await;
    assert!(st.flow_controlled > 0);
    // Retries made most of them go through; each accepted part went exactly once.
    assert!(accepted >= 20, "{accepted} of 30 accepted");
    assert_eq!(events(&bank, "cmpp_submit").len(), accepted);

    // Always refused: the link resends 3 times, then reports FlowControl (not a failure).
    ctl(&bank, IsmgControl::FlowControl { rate: 1.0 }).await;
    let t = Instant::now();
    let out = link.submit(&part("13800138000", "x", false)).await.unwrap();
    assert_eq!(out, SubmitOutcome::FlowControl { attempts: 4 });
    // Paused 10+20+40 ms (doubling) between the resends, at least.
    assert!(
        t.elapsed() >= Duration::from_millis(70),
        "{:?}",
        t.elapsed()
    );
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn a_drop_mid_batch_is_maybe_sent_for_written_parts_only_then_reconnects() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| c.latency = Duration::from_millis(600)).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    wait_up(&mut ev).await;
    let l2 = link.clone();
    let batch = tokio::spawn(async move { submit_many(&l2, 24).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    ctl(&bank, IsmgControl::Drop).await;
    let results = batch.await.unwrap();
    let maybe = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.payload_fate() == PayloadFate::MaybeSent))
        .count();
    let not_sent = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.payload_fate() == PayloadFate::NotSent))
        .count();
    // The 16 written (the gateway logged them) are unknown; the 8 queued never left.
    assert_eq!((maybe, not_sent), (16, 8), "{results:?}");
    assert_eq!(events(&bank, "cmpp_submit").len(), 16);
    for r in &results {
        if let Err(GatewayLinkError::Unconfirmed { sequence_id, .. }) = r {
            assert!(*sequence_id > 0);
        }
    }
    // Down, then up again on its own.
    let GatewayEvent::Down { permanent, .. } = next_event(&mut ev).await else {
        panic!("expected Down")
    };
    assert!(!permanent);
    wait_up(&mut ev).await;
    let out = link.submit(&part("13800138000", "x", false)).await.unwrap();
    assert!(matches!(out, SubmitOutcome::Accepted { .. }));
    assert_eq!(link.stats().logins, 2);
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn silence_times_out_as_maybe_sent_and_active_test_finds_the_dead_link() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let mut cfg = config(bank.cmpp_addr().unwrap());
    cfg.response_timeout = Duration::from_millis(300);
    cfg.heartbeat = Duration::from_millis(200);
    cfg.active_test_timeout = Duration::from_millis(200);
    cfg.active_test_attempts = 2;
    let (link, mut ev) = GatewayLink::spawn(cfg);
    wait_up(&mut ev).await;
    ctl(&bank, IsmgControl::Silence { on: true }).await;
    let e = link
        .submit(&part("13800138000", "x", false))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, GatewayLinkError::Unconfirmed { cause, .. } if cause.contains("no SUBMIT_RESP")),
        "{e:?}"
    );
    assert_eq!(e.payload_fate(), PayloadFate::MaybeSent);
    let t = Instant::now();
    let GatewayEvent::Down { reason, .. } = next_event(&mut ev).await else {
        panic!("expected Down")
    };
    assert!(reason.contains("ACTIVE_TEST"), "{reason}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        ctl(&bank, IsmgControl::Status).await.swallowed >= 3,
        "SUBMIT and 2 ACTIVE_TESTs"
    );
    // Silence over: the link comes back.
    ctl(&bank, IsmgControl::Recover).await;
    wait_up(&mut ev).await;
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn a_report_before_its_submit_resp_is_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    wait_up(&mut ev).await;
    ctl(&bank, IsmgControl::ReportsFirst { on: true }).await;
    ctl(&bank, IsmgControl::ShortReports { on: true }).await;
    let out = link.submit(&part("13800138000", "x", true)).await.unwrap();
    let SubmitOutcome::Accepted { msg_id } = out else {
        panic!("{out:?}")
    };
    // The event was sent before the outcome came back: it is already waiting.
    let GatewayEvent::Report(rep) = ev.try_recv().expect("report already there") else {
        panic!("expected a report")
    };
    assert_eq!(rep.msg_id, msg_id);
    assert_eq!(rep.dest_terminal_id, "13800138000");
    rep.ack.ack().await.unwrap();
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

/// A TCP stream that records every byte the client writes.
struct Tap {
    inner: tokio::net::TcpStream,
    written: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.lock().unwrap().extend_from_slice(&buf[..*n]);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn written_pdus(w: &Arc<Mutex<Vec<u8>>>) -> Vec<cmpp::Pdu> {
    let bytes = w.lock().unwrap().clone();
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok((Some(p), n)) = cmpp::decode(&bytes[at..], Version::V30) {
        at += n;
        out.push(p);
    }
    out
}

#[tokio::test]
async fn mo_in_ucs2_and_ascii_is_acked_only_after_the_consumer_acks() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let addr = bank.cmpp_addr().unwrap();
    let written = Arc::new(Mutex::new(Vec::new()));
    let w = written.clone();
    let connector: Connector = Arc::new(move || {
        let w = w.clone();
        Box::pin(async move {
            let inner = tokio::net::TcpStream::connect(addr).await?;
            Ok(Box::new(Tap { inner, written: w }) as BoxedStream)
        })
    });
    let (link, mut ev) = GatewayLink::spawn_with(config(addr), connector, RateLimiter::unlimited());
    wait_up(&mut ev).await;
    for (text, fmt) in [("退订", cmpp::MsgFmt::Ucs2), ("TD", cmpp::MsgFmt::Ascii)] {
        ctl(
            &bank,
            IsmgControl::Mo {
                from: "13912345678".into(),
                to: "106901234542".into(),
                text: text.into(),
            },
        )
        .await;
        let GatewayEvent::Mo(mo) = next_event(&mut ev).await else {
            panic!("expected MO")
        };
        assert_eq!(mo.text.as_deref(), Some(text));
        assert_eq!(mo.msg_fmt, fmt);
        assert_eq!(mo.src_terminal_id, "13912345678");
        assert_eq!(mo.extension.as_deref(), Some("42"));
        let deliver_resps = || {
            written_pdus(&written)
                .into_iter()
                .filter(|p| matches!(p.body, Body::DeliverResp(_)))
                .count()
        };
        let before = deliver_resps();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(deliver_resps(), before, "no DELIVER_RESP before the ack");
        mo.ack.ack().await.unwrap();
        assert_eq!(deliver_resps(), before + 1, "DELIVER_RESP after the ack");
    }
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_holds_submits_to_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let mut cfg = config(bank.cmpp_addr().unwrap());
    cfg.max_per_second = Some(50);
    let (link, mut ev) = GatewayLink::spawn(cfg);
    wait_up(&mut ev).await;
    let t = Instant::now();
    let results = submit_many(&link, 30).await;
    assert!(results.iter().all(|r| r.is_ok()));
    // A bucket of 5, then 50/s: 25 more take 0.5 s.
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_answers_then_terminates() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| c.latency = Duration::from_millis(300)).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    wait_up(&mut ev).await;
    let l2 = link.clone();
    let batch = tokio::spawn(async move { submit_many(&l2, 5).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    link.shutdown(Duration::from_secs(3)).await;
    let results = batch.await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(SubmitOutcome::Accepted { .. }))),
        "{results:?}"
    );
    assert_eq!(link.state(), LinkState::Stopped);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closes = events(&bank, "cmpp_link_close");
    assert_eq!(closes.last().unwrap()["reason"], "TERMINATE", "{closes:?}");
    let e = link
        .submit(&part("13800138000", "x", false))
        .await
        .unwrap_err();
    assert_eq!(e, GatewayLinkError::Closed);
    let _ = SubmitClass::Permanent;
    bank.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_bounded_and_leaves_unanswered_parts_maybe_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let (link, mut ev) = GatewayLink::spawn(config(bank.cmpp_addr().unwrap()));
    wait_up(&mut ev).await;
    ctl(&bank, IsmgControl::Silence { on: true }).await;
    let l2 = link.clone();
    let one = tokio::spawn(async move { l2.submit(&part("13800138000", "x", false)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    link.shutdown(Duration::from_millis(300)).await;
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let e = one.await.unwrap().unwrap_err();
    assert_eq!(e.payload_fate(), PayloadFate::MaybeSent, "{e:?}");
    assert_eq!(link.state(), LinkState::Stopped);
    bank.shutdown().await;
}

#[tokio::test]
async fn a_late_submit_resp_is_reported_with_its_sequence_id() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| c.latency = Duration::from_millis(400)).await;
    let mut cfg = config(bank.cmpp_addr().unwrap());
    cfg.response_timeout = Duration::from_millis(150);
    let (link, mut ev) = GatewayLink::spawn(cfg);
    wait_up(&mut ev).await;
    let e = link
        .submit(&part("13800138000", "x", false))
        .await
        .unwrap_err();
    let GatewayLinkError::Unconfirmed { sequence_id, .. } = e else {
        panic!("{e:?}")
    };
    let GatewayEvent::LateResponse {
        sequence_id: late,
        msg_id,
        result,
    } = next_event(&mut ev).await
    else {
        panic!("expected LateResponse")
    };
    assert_eq!((late, result), (sequence_id, 0));
    assert_eq!(
        events(&bank, "cmpp_submit")[0]["msg_id"].as_u64(),
        Some(msg_id)
    );
    link.shutdown(Duration::from_secs(2)).await;
    bank.shutdown().await;
}
