//! The virtual CMPP gateway (`smsgate sim --cmpp`) against a real TCP client written here on
//! the codec: login checks, version fallback, Msg_Ids and report DELIVERs, the window,
//! ACTIVE_TEST, every `sim ctl` fault, and the events.jsonl record of accepted SUBMITs; and
//! the binary's `--cmpp` flags and `sim ctl cmpp-*` commands.

mod ismg_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ismg_support::{ctl, events, start_ismg};
use smsgate::cmpp::{
    self, connect_status, Body, Connect, ConnectResp, DeliverContent, MsgFmt, MsgId, Pdu, Submit,
    Version,
};
use smsgate::sim::{Bank, Control, IsmgConfig, IsmgControl, IsmgStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SP: &str = "901234";
const SECRET: &[u8] = b"s3cret";
const WAIT: Duration = Duration::from_secs(5);

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
    v: Version,
    seq: u32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            v: Version::V30,
            seq: 0,
        }
    }

    async fn send(&mut self, body: Body) -> u32 {
        self.seq += 1;
        let bytes = Pdu::new(self.seq, body).emit(self.v).unwrap();
        self.s.write_all(&bytes).await.unwrap();
        self.seq
    }

    /// The next PDU, or None when the gateway closed the link.
    async fn recv_or_close(&mut self) -> Option<Pdu> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let (Some(p), n) = cmpp::decode(&self.buf, self.v).unwrap() {
                    self.buf.drain(..n);
                    return Some(p);
                }
                let mut chunk = [0u8; 4096];
                let n = self.s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return None;
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("no PDU from the gateway within 5 s")
    }

    async fn recv(&mut self) -> Pdu {
        self.recv_or_close()
            .await
            .expect("the gateway closed the link")
    }

    /// Asserts that nothing arrives for `d`.
    async fn quiet(&mut self, d: Duration) {
        let mut chunk = [0u8; 64];
        if let Ok(r) = tokio::time::timeout(d, self.s.read(&mut chunk)).await {
            let n = r.as_ref().map_or(0, |n| *n);
            panic!("expected silence, got {r:?} {:?}", &chunk[..n]);
        }
    }

    async fn login(&mut self, sp: &str, secret: &[u8], version: u8) -> ConnectResp {
        let seq = self
            .send(Body::Connect(Connect::new(
                sp.as_bytes(),
                secret,
                cmpp::timestamp(11, 29, 20, 30, 5),
                version,
            )))
            .await;
        let p = self.recv().await;
        assert_eq!(p.sequence_id, seq);
        let Body::ConnectResp(r) = p.body else {
            panic!("{p:?}")
        };
        if r.status == 0 {
            self.v = Version::from_byte(version);
        }
        r
    }
}

fn submit(dest: &str, report: bool) -> Body {
    let mut s = Submit::new(
        b"106901234542",
        dest.as_bytes(),
        MsgFmt::Ucs2,
        vec![0x4f, 0x60],
    );
    s.registered_delivery = u8::from(report);
    s.service_id = b"MXX0000001".to_vec();
    Body::Submit(s)
}

async fn start(dir: &Path, tune: impl FnOnce(&mut IsmgConfig)) -> Bank {
    start_ismg(dir, SP, SECRET, Duration::from_millis(200), tune).await
}

#[tokio::test]
async fn login_submit_report_and_active_test() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let addr = bank.cmpp_addr().unwrap();

    // A wrong secret is refused (3) and the link closed; a wrong SP id is 2.
    let mut c = Client::connect(addr).await;
    let r = c.login(SP, b"wrong", 0x30).await;
    assert_eq!(r.status, connect_status::AUTH_FAILED);
    assert!(c.recv_or_close().await.is_none(), "refused link closed");
    let mut c = Client::connect(addr).await;
    assert_eq!(
        c.login("900001", SECRET, 0x30).await.status,
        connect_status::ILLEGAL_SOURCE
    );

    // The right one logs in on 3.0; the gateway's authenticator is MD5(status, source, secret).
    let mut c = Client::connect(addr).await;
    let auth = Connect::new(
        SP.as_bytes(),
        SECRET,
        cmpp::timestamp(11, 29, 20, 30, 5),
        0x30,
    )
    .authenticator_source;
    let r = c.login(SP, SECRET, 0x30).await;
    assert_eq!(r.status, 0);
    assert_eq!(r.version, 0x30);
    assert_eq!(
        r.authenticator_ismg,
        cmpp::authenticator_ismg(0, Version::V30, &auth, SECRET)
    );

    // A SUBMIT asking for a report: SUBMIT_RESP 0 with a Msg_Id in the standard layout,
    // then a 71-byte report DELIVER for that Msg_Id, which we acknowledge.
    let seq = c.send(submit("13800138000", true)).await;
    let p = c.recv().await;
    assert_eq!(p.sequence_id, seq);
    let Body::SubmitResp(r) = p.body else {
        panic!("{p:?}")
    };
    assert_eq!(r.result, 0);
    let id = MsgId::split(r.msg_id);
    assert_eq!(id.gateway, 100_001);
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    assert_eq!(id.month as i8, now.month());
    assert_eq!(id.day as i8, now.day());
    let p = c.recv().await;
    let Body::Deliver(d) = p.body else {
        panic!("{p:?}")
    };
    assert_eq!(d.registered_delivery, 1);
    let DeliverContent::Report(rep) = d.content else {
        panic!("{d:?}")
    };
    assert_eq!(rep.msg_id, r.msg_id);
    assert_eq!(rep.layout, Version::V30, "71-byte report on a 3.0 link");
    assert!(rep.delivered());
    assert_eq!(rep.dest_terminal_id, b"13800138000");
    c.send(Body::DeliverResp(cmpp::MsgIdResult {
        msg_id: r.msg_id,
        result: 0,
    }))
    .await;

    // Two recipients in one SUBMIT get consecutive Msg_Ids; each is logged.
    let mut two = submit("13900139000", false);
    if let Body::Submit(s) = &mut two {
        s.dest_terminal_ids.push(b"13700137000".to_vec());
    }
    c.send(two).await;
    let Body::SubmitResp(r2) = c.recv().await.body else {
        panic!()
    };
    assert_eq!(MsgId::split(r2.msg_id).sequence, id.sequence + 1);

    // ACTIVE_TEST is answered with the same sequence id.
    let seq = c.send(Body::ActiveTest).await;
    let p = c.recv().await;
    assert_eq!(
        (p.sequence_id, p.body),
        (seq, Body::ActiveTestResp(Some(0)))
    );

    // TERMINATE: answered, then closed.
    let seq = c.send(Body::Terminate).await;
    assert_eq!(c.recv().await, Pdu::new(seq, Body::TerminateResp));
    assert!(c.recv_or_close().await.is_none());

    let subs = events(&bank, "cmpp_submit");
    assert_eq!(subs.len(), 3, "{subs:?}");
    assert_eq!(subs[0]["msg_id"].as_u64(), Some(r.msg_id));
    assert_eq!(subs[0]["dest"], "13800138000");
    assert_eq!(subs[0]["src_id"], "106901234542");
    assert_eq!(subs[0]["msg_fmt"], 8);
    assert_eq!(subs[0]["udhi"], 0);
    assert_eq!(subs[0]["pk_total"], 1);
    assert_eq!(subs[0]["content"], "4f60");
    assert_eq!(subs[2]["msg_id"].as_u64(), Some(r2.msg_id + 1));
    assert_eq!(subs[2]["dest"], "13700137000");
    let st = ctl(&bank, IsmgControl::Status).await;
    assert_eq!((st.logins_ok, st.logins_refused), (1, 2));
    assert_eq!(
        (st.submits_accepted, st.reports_sent, st.active_tests),
        (3, 1, 1)
    );
    bank.shutdown().await;
}

#[tokio::test]
async fn version_fallback_on_a_2_0_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| c.max_version = Version::V20).await;
    let addr = bank.cmpp_addr().unwrap();
    // A 3.0 login: status 4 (version too high) in the 2.0 layout (18-byte body), then closed.
    let mut c = Client::connect(addr).await;
    c.send(Body::Connect(Connect::new(
        SP.as_bytes(),
        SECRET,
        1129203005,
        0x30,
    )))
    .await;
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, c.s.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u32::from_be_bytes(head[..4].try_into().unwrap()), 12 + 18);
    let mut body = [0u8; 18];
    c.s.read_exact(&mut body).await.unwrap();
    assert_eq!(body[0], connect_status::VERSION_TOO_HIGH as u8);
    assert_eq!(body[17], 0x20);
    // Again in 2.0: logged in, and the 2.0 layouts from then on (1-byte Result, 60-byte report).
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x20).await.status, 0);
    assert_eq!(c.v, Version::V20);
    c.send(submit("13800138000", true)).await;
    let Body::SubmitResp(r) = c.recv().await.body else {
        panic!()
    };
    assert_eq!(r.result, 0);
    let Body::Deliver(d) = c.recv().await.body else {
        panic!()
    };
    let DeliverContent::Report(rep) = d.content else {
        panic!()
    };
    assert_eq!((rep.layout, rep.msg_id), (Version::V20, r.msg_id));
    assert_eq!(events(&bank, "cmpp_submit")[0]["version"], "2.0");
    bank.shutdown().await;
}

#[tokio::test]
async fn window_is_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| {
        c.window = 2;
        c.latency = Duration::from_millis(400);
    })
    .await;
    let mut c = Client::connect(bank.cmpp_addr().unwrap()).await;
    assert_eq!(c.login(SP, SECRET, 0x30).await.status, 0);
    let s1 = c.send(submit("13800138001", false)).await;
    let s2 = c.send(submit("13800138002", false)).await;
    let s3 = c.send(submit("13800138003", false)).await;
    // The third is over the window: answered at once with flow control (8), not accepted.
    let p = c.recv().await;
    assert_eq!(p.sequence_id, s3);
    assert!(matches!(p.body, Body::SubmitResp(r) if r.result == 8 && r.msg_id == 0));
    let mut got = vec![c.recv().await.sequence_id, c.recv().await.sequence_id];
    got.sort();
    assert_eq!(got, vec![s1, s2]);
    // Answered: the window has room again.
    let s4 = c.send(submit("13800138004", false)).await;
    let p = c.recv().await;
    assert!(matches!(p.body, Body::SubmitResp(r) if r.result == 0) && p.sequence_id == s4);
    assert_eq!(events(&bank, "cmpp_submit").len(), 3);
    assert_eq!(ctl(&bank, IsmgControl::Status).await.window_full, 1);
    bank.shutdown().await;
}

#[tokio::test]
async fn ctl_faults() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |_| {}).await;
    let addr = bank.cmpp_addr().unwrap();

    // MO: a DELIVER (not a report) from the subscriber to our 106 number + extension.
    assert!(
        bank.control(Control::Cmpp(IsmgControl::Mo {
            from: "13912345678".into(),
            to: "106901234542".into(),
            text: "TD".into()
        }))
        .await
        .is_err(),
        "no logged-in link yet"
    );
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x30).await.status, 0);
    for (text, fmt, content) in [
        ("TD", MsgFmt::Ascii, b"TD".to_vec()),
        ("退订", MsgFmt::Ucs2, vec![0x90, 0x00, 0x8b, 0xa2]),
    ] {
        ctl(
            &bank,
            IsmgControl::Mo {
                from: "13912345678".into(),
                to: "106901234542".into(),
                text: text.into(),
            },
        )
        .await;
        let Body::Deliver(d) = c.recv().await.body else {
            panic!()
        };
        assert_eq!(d.registered_delivery, 0);
        assert_eq!(d.dest_id, b"106901234542");
        assert_eq!(d.src_terminal_id, b"13912345678");
        assert_eq!(
            (d.msg_fmt, d.content),
            (fmt, DeliverContent::Message(content))
        );
    }

    // A Dest_Id too long for its 21 octets is refused by ctl; the link stays up.
    let long = Control::Cmpp(IsmgControl::Mo {
        from: "13912345678".into(),
        to: "1".repeat(22),
        text: "TD".into(),
    });
    let e = bank.control(long).await.unwrap_err().to_string();
    assert!(e.contains("Dest_Id"), "{e}");
    let seq = c.send(Body::ActiveTest).await;
    assert_eq!(c.recv().await.sequence_id, seq);

    // Flow control at rate 1: every SUBMIT gets 8 and none is logged as accepted.
    ctl(&bank, IsmgControl::FlowControl { rate: 1.0 }).await;
    c.send(submit("13800138000", false)).await;
    assert!(matches!(c.recv().await.body, Body::SubmitResp(r) if r.result == 8));
    assert!(events(&bank, "cmpp_submit").is_empty());
    ctl(&bank, IsmgControl::FlowControl { rate: 0.0 }).await;

    // Reports before responses: the DELIVER for the Msg_Id comes first, then SUBMIT_RESP.
    ctl(&bank, IsmgControl::ReportsFirst { on: true }).await;
    let seq = c.send(submit("13800138000", true)).await;
    let Body::Deliver(d) = c.recv().await.body else {
        panic!("report first")
    };
    let DeliverContent::Report(rep) = d.content else {
        panic!()
    };
    let p = c.recv().await;
    assert_eq!(p.sequence_id, seq);
    assert!(matches!(p.body, Body::SubmitResp(r) if r.msg_id == rep.msg_id && r.result == 0));
    ctl(&bank, IsmgControl::ReportsFirst { on: false }).await;

    // 60-byte reports on this 3.0 link.
    ctl(&bank, IsmgControl::ShortReports { on: true }).await;
    c.send(submit("13800138000", true)).await;
    let Body::SubmitResp(r) = c.recv().await.body else {
        panic!()
    };
    let Body::Deliver(d) = c.recv().await.body else {
        panic!()
    };
    let DeliverContent::Report(rep) = d.content else {
        panic!()
    };
    assert_eq!((rep.layout, rep.msg_id), (Version::V20, r.msg_id));

    // Silence: nothing answered, not even ACTIVE_TEST; input swallowed.
    ctl(&bank, IsmgControl::Silence { on: true }).await;
    c.send(Body::ActiveTest).await;
    c.send(submit("13800138000", false)).await;
    c.quiet(Duration::from_millis(500)).await;
    let st = ctl(&bank, IsmgControl::Status).await;
    assert_eq!(st.swallowed, 2);
    ctl(&bank, IsmgControl::Recover).await;
    let seq = c.send(Body::ActiveTest).await;
    assert_eq!(c.recv().await.sequence_id, seq);

    // Link drop: the gateway closes the link; a new login works.
    ctl(&bank, IsmgControl::Drop).await;
    assert!(c.recv_or_close().await.is_none());
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x30).await.status, 0);

    // Wrong-password mode: even the right secret is refused with 3 until off.
    ctl(&bank, IsmgControl::AuthFail { on: true }).await;
    let mut c2 = Client::connect(addr).await;
    assert_eq!(
        c2.login(SP, SECRET, 0x30).await.status,
        connect_status::AUTH_FAILED
    );
    ctl(&bank, IsmgControl::AuthFail { on: false }).await;
    let mut c3 = Client::connect(addr).await;
    assert_eq!(c3.login(SP, SECRET, 0x30).await.status, 0);
    assert_eq!(ctl(&bank, IsmgControl::Status).await.links.len(), 2);
    bank.shutdown().await;
}

#[tokio::test]
async fn binary_flags_and_ctl_commands() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_smsgate");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut child = Command::new(BIN)
        .args(["sim", "--modems", "0", "--dir"])
        .arg(dir)
        .args([
            "--cmpp",
            "127.0.0.1:0",
            "--cmpp-sp-id",
            SP,
            "--cmpp-secret",
            "s3cret",
        ])
        .args(["--cmpp-version", "2.0", "--report-delay", "100ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = child.stdout.take().unwrap();
    let _guard = Kill(child);
    let mut addr = None;
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        if let Some(a) = line.strip_prefix("cmpp ") {
            addr = Some(a.parse::<SocketAddr>().unwrap());
        }
    }
    let addr = addr.expect("banner names the CMPP address");
    let mut c = Client::connect(addr).await;
    assert_eq!(
        c.login(SP, SECRET, 0x30).await.status,
        connect_status::VERSION_TOO_HIGH
    );
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x20).await.status, 0);

    let ctl = |args: &[&str]| {
        Command::new(BIN)
            .args(["sim", "ctl", "--dir"])
            .arg(dir)
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctl(&[
        "cmpp-mo",
        "--from",
        "13912345678",
        "--to",
        "106901234542",
        "--text",
        "TD",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Body::Deliver(d) = c.recv().await.body else {
        panic!()
    };
    assert_eq!(d.content, DeliverContent::Message(b"TD".to_vec()));
    for args in [
        &["cmpp-flow-control", "--rate", "0.5"][..],
        &["cmpp-auth-fail", "on"],
        &["cmpp-silence", "off"],
        &["cmpp-reports-first", "on"],
        &["cmpp-short-reports", "on"],
        &["cmpp-recover"],
    ] {
        let out = ctl(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = ctl(&["cmpp-status"]);
    let st: IsmgStatus = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st.links, vec!["2.0"]);
    assert_eq!((st.logins_ok, st.logins_refused, st.mo_sent), (1, 1, 1));
    let out = ctl(&["cmpp-drop"]);
    assert!(out.status.success());
    assert!(c.recv_or_close().await.is_none());
    for bad in [
        &["cmpp-silence", "maybe"][..],
        &["cmpp-flow-control", "--rate", "2"],
    ] {
        assert_eq!(ctl(bad).status.code(), Some(2), "{bad:?}");
    }
}

/// The next PDU, which must be the status report for `msg_id`; returns its sequence id.
async fn expect_report(c: &mut Client, msg_id: u64) -> u32 {
    let p = c.recv().await;
    let Body::Deliver(d) = &p.body else {
        panic!("expected the report of {msg_id}, got {p:?}")
    };
    let DeliverContent::Report(rep) = &d.content else {
        panic!("{d:?}")
    };
    assert_eq!(rep.msg_id, msg_id);
    p.sequence_id
}

async fn submit_for_report(c: &mut Client, dest: &str) -> u64 {
    let seq = c.send(submit(dest, true)).await;
    let p = c.recv().await;
    assert_eq!(p.sequence_id, seq);
    let Body::SubmitResp(r) = p.body else {
        panic!("{p:?}")
    };
    assert_eq!(r.result, 0);
    r.msg_id
}

async fn wait_links(bank: &Bank, n: usize) -> IsmgStatus {
    for _ in 0..100 {
        let st = ctl(bank, IsmgControl::Status).await;
        if st.links.len() == n {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the gateway never had {n} links")
}

#[tokio::test]
async fn reports_of_a_closed_link_are_kept_and_sent_on_another_link() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = start(tmp.path(), |c| c.report_delay = Duration::from_millis(300)).await;
    let addr = bank.cmpp_addr().unwrap();

    // The link drops before the report is due; no link is left: the report waits, and the
    // next login gets it (after its CONNECT_RESP), its due time long past.
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x30).await.status, 0);
    let id = submit_for_report(&mut c, "13800138000").await;
    drop(c);
    wait_links(&bank, 0).await;
    // The link leaves the map before it puts its reports aside: poll for them.
    let mut st = ctl(&bank, IsmgControl::Status).await;
    for _ in 0..100 {
        if st.reports_waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        st = ctl(&bank, IsmgControl::Status).await;
    }
    assert_eq!(st.reports_waiting, 1, "{st:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x30).await.status, 0);
    expect_report(&mut c, id).await;

    // Written but never acknowledged: the next login gets it again; acknowledged, it is not.
    drop(c);
    wait_links(&bank, 0).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x30).await.status, 0);
    let again = expect_report(&mut c, id).await;
    let resp = Pdu::new(
        again,
        Body::DeliverResp(cmpp::MsgIdResult {
            msg_id: id,
            result: 0,
        }),
    );
    c.s.write_all(&resp.emit(c.v).unwrap()).await.unwrap();
    let seq = c.send(Body::ActiveTest).await;
    assert_eq!(c.recv().await.sequence_id, seq, "the answer was read");
    drop(c);
    wait_links(&bank, 0).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(SP, SECRET, 0x30).await.status, 0);
    c.quiet(Duration::from_millis(500)).await;

    // With another link logged in, a report due on a link that closes goes there, on time
    // (2.0 link: re-laid out as a 60-byte report).
    let mut other = Client::connect(addr).await;
    assert_eq!(other.login(SP, SECRET, 0x20).await.status, 0);
    let id = submit_for_report(&mut c, "13900139000").await;
    let st = ctl(&bank, IsmgControl::Status).await;
    drop(c);
    wait_links(&bank, 1).await;
    let p = other.recv().await;
    let Body::Deliver(d) = &p.body else {
        panic!("{p:?}")
    };
    let DeliverContent::Report(rep) = &d.content else {
        panic!("{d:?}")
    };
    assert_eq!((rep.msg_id, rep.layout), (id, Version::V20));
    let now = ctl(&bank, IsmgControl::Status).await;
    assert_eq!(now.reports_kept, st.reports_kept + 1, "{now:?}");
    assert_eq!(now.reports_waiting, 0);
    bank.shutdown().await;
}
