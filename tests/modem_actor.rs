//! The modem actor over `tokio::io::duplex` against a scripted peer: init and identity,
//! sending with the prompt (and +CMMS=2), device errors versus link errors, +CMTI inbound with
//! ack-then-delete, stored messages at start-up, +CMT direct, hung and vanished ports, SIM PIN,
//! and the PHS dialect (^HCMGS, SMSC stripped). Time is paused, so timeouts cost nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsgate::at::{CmsError, DeviceError, ErrorClass};
use smsgate::modem::{
    dialect, InboundOrigin, LinkError, Modem, ModemConfig, ModemEvent, ModemHandle, PayloadFate,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

type Script = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The modem side: logs every command (and "PDU:<hex>" after a prompt), answers from a
/// script (None = stay silent), and can inject URCs.
struct Peer {
    log: Arc<Mutex<Vec<String>>>,
    inject: mpsc::UnboundedSender<Vec<u8>>,
}

impl Peer {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn saw(&self, cmd: &str) -> bool {
        self.log().iter().any(|l| l == cmd)
    }
    fn urc(&self, s: &str) {
        self.inject.send(s.as_bytes().to_vec()).unwrap();
    }
}

fn start_peer(mut io: DuplexStream, script: Script) -> Peer {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let l = log.clone();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut in_prompt = false;
        let mut chunk = [0u8; 256];
        loop {
            tokio::select! {
                n = io.read(&mut chunk) => {
                    let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                    buf.extend_from_slice(&chunk[..n]);
                    loop {
                        let end = if in_prompt {
                            buf.iter().position(|&b| b == 0x1a || b == 0x1b)
                        } else {
                            buf.iter().position(|&b| b == b'\r')
                        };
                        let Some(end) = end else { break };
                        let term = buf[end];
                        let text = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..=end);
                        let entry = if in_prompt {
                            in_prompt = false;
                            if term == 0x1b { "ESC".to_string() } else { format!("PDU:{text}") }
                        } else {
                            text
                        };
                        l.lock().unwrap().push(entry.clone());
                        if let Some(reply) = script(&entry) {
                            if reply == DROP {
                                return; // the port vanishes (USB brown-out)
                            }
                            if reply.ends_with("> ") {
                                in_prompt = true;
                            }
                            if io.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Some(bytes) = rx.recv() => {
                    if bytes.is_empty() {
                        return; // drop the port
                    }
                    if io.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Peer { log, inject: tx }
}

/// A script reply that makes the peer drop the port instead of answering.
const DROP: &str = "\u{0}DROP";

const STORED_PDU: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

/// A Quectel-like modem with an empty SIM store.
fn standard(cmd: &str) -> Option<String> {
    let ok = |body: &str| Some(format!("{body}\r\nOK\r\n"));
    match cmd {
        "AT+CGMI" => ok("\r\nQuectel\r\n"),
        "AT+CGMM" => ok("\r\nEC25\r\n"),
        "AT+CGMR" => ok("\r\nEC25EFAR06A06M4G\r\n"),
        "AT+CGSN" => ok("\r\n867223041234567\r\n"),
        "AT+CIMI" => ok("\r\n460001234567890\r\n"),
        "AT+QCCID" => ok("\r\n+QCCID: 89860117838009934120\r\n"),
        "AT+CNUM" => ok("\r\n+CNUM: \"\",\"+8613912345678\",145\r\n"),
        "AT+CPIN?" => ok("\r\n+CPIN: READY\r\n"),
        "AT+CSQ" => ok("\r\n+CSQ: 20,99\r\n"),
        "AT+CREG?" => ok("\r\n+CREG: 1,1\r\n"),
        "AT+COPS?" => ok("\r\n+COPS: 0,0,\"CHINA MOBILE\",7\r\n"),
        "AT+CMGL=4" => ok(""),
        "AT+CMGR=2" => ok(&format!("\r\n+CMGR: 0,,24\r\n{STORED_PDU}\r\n")),
        c if c.starts_with("AT+CMGS=") => Some("\r\n> ".into()),
        c if c.starts_with("PDU:") => ok("\r\n+CMGS: 42\r\n"),
        _ => ok(""),
    }
}

fn with(over: impl Fn(&str) -> Option<Option<String>> + Send + Sync + 'static) -> Script {
    Arc::new(move |c| over(c).unwrap_or_else(|| standard(c)))
}

fn config() -> ModemConfig {
    let mut c = ModemConfig::new("test0");
    c.health_interval = Duration::from_secs(3600);
    c.probe_timeout = Duration::from_millis(500);
    c.send_timeout = Duration::from_secs(10);
    c
}

async fn start(
    script: Script,
    cfg: ModemConfig,
) -> (ModemHandle, mpsc::Receiver<ModemEvent>, Peer) {
    let (a, b) = tokio::io::duplex(4096);
    let peer = start_peer(b, script);
    let (h, ev) = Modem::spawn(a, &cfg);
    (h, ev, peer)
}

async fn next_matching(
    ev: &mut mpsc::Receiver<ModemEvent>,
    pred: impl Fn(&ModemEvent) -> bool,
) -> ModemEvent {
    loop {
        let e = ev.recv().await.expect("event stream ended");
        if pred(&e) {
            return e;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn iccid_falls_back_to_crsm() {
    let script = with(|c| match c {
        "AT+QCCID" => Some(Some("\r\nERROR\r\n".into())),
        "AT+CRSM=176,12258,0,0,10" => Some(Some(
            "\r\n+CRSM: 144,0,\"98681071388090394321\"\r\n\r\nOK\r\n".into(),
        )),
        _ => None,
    });
    let mut cfg = config();
    cfg.verbose_errors = true;
    let (h, _ev, peer) = start(script, cfg).await;
    assert_eq!(
        h.identity().await.unwrap().iccid.as_deref(),
        Some("89860117830809933412")
    );
    assert!(peer.saw("AT+CMEE=2"));
}

#[tokio::test(start_paused = true)]
async fn init_runs_the_sequence_and_reports_identity() {
    let (h, mut ev, peer) = start(Arc::new(standard), config()).await;
    let id = h.identity().await.unwrap();
    assert_eq!(id.dialect, "quectel");
    assert_eq!(id.imsi.as_deref(), Some("460001234567890"));
    assert_eq!(id.iccid.as_deref(), Some("89860117838009934120"));
    assert_eq!(id.own_number.as_deref(), Some("+8613912345678"));
    assert_eq!(id.destination_toa, 0x91);
    let log = peer.log();
    let pos = |c: &str| {
        log.iter()
            .position(|l| l == c)
            .unwrap_or_else(|| panic!("{c} not sent: {log:?}"))
    };
    assert!(pos("ATE0") < pos("AT+CMEE=1"));
    assert!(pos("AT+CMGF=0") < pos("AT+CNMI=2,1,0,1,0"));
    assert!(matches!(
        ev.recv().await,
        Some(ModemEvent::HealthChanged(_))
    ));
    assert!(matches!(ev.recv().await, Some(ModemEvent::Ready(_))));
    let health = h.health().await.unwrap();
    assert_eq!(health.dbm, Some(-73));
    assert_eq!(health.operator.as_deref(), Some("CHINA MOBILE"));
    assert!(health.registered());
}

#[tokio::test(start_paused = true)]
async fn send_part_uses_the_prompt_and_cmms() {
    let (h, _ev, peer) = start(Arc::new(standard), config()).await;
    let r = h
        .send_part("0011000B911326880736F40000A70341E211", 16, true)
        .await;
    assert_eq!(r, Ok(Ok(42)));
    let log = peer.log();
    let i = log
        .iter()
        .position(|l| l == "AT+CMMS=2")
        .expect("CMMS=2 before a part with more to come");
    assert_eq!(log[i + 1], "AT+CMGS=16");
    assert_eq!(log[i + 2], "PDU:0011000B911326880736F40000A70341E211");
    // The last part does not reopen +CMMS.
    assert_eq!(h.send_part("0011", 1, false).await, Ok(Ok(42)));
    assert_eq!(peer.log().iter().filter(|l| *l == "AT+CMMS=2").count(), 1);
}

#[tokio::test(start_paused = true)]
async fn cms_error_is_a_device_error_with_a_class() {
    let script = with(|c| {
        c.starts_with("PDU:")
            .then(|| Some("\r\n+CMS ERROR: 304\r\n".into()))
    });
    let (h, _ev, _peer) = start(script, config()).await;
    let r = h
        .send_part("0011", 1, false)
        .await
        .expect("the link is fine");
    let e = r.unwrap_err();
    assert_eq!(e, DeviceError::Cms(CmsError::InvalidPduParameter));
    assert_eq!(e.class(), ErrorClass::PermanentForMessage);
}

#[tokio::test(start_paused = true)]
async fn cmti_inbound_is_deleted_only_after_ack() {
    let (h, mut ev, peer) = start(Arc::new(standard), config()).await;
    h.identity().await.unwrap();
    peer.urc("\r\n+CMTI: \"SM\",2\r\n");
    let e = next_matching(&mut ev, |e| matches!(e, ModemEvent::Inbound(_))).await;
    let ModemEvent::Inbound(p) = e else {
        unreachable!()
    };
    assert_eq!(p.pdu_hex, STORED_PDU);
    assert_eq!(p.length, 24);
    assert_eq!(
        p.ack.origin(),
        &InboundOrigin::Stored {
            mem: "SM".into(),
            index: 2
        }
    );
    assert!(peer.saw("AT+CMGR=2"));
    // Round-trip through the actor so it had every chance to delete early.
    h.health().await.unwrap();
    assert!(!peer.saw("AT+CMGD=2"), "deleted before the store had it");
    assert_eq!(p.ack.ack().await, Ok(Ok(())));
    assert!(peer.saw("AT+CMGD=2"));
}

#[tokio::test(start_paused = true)]
async fn stored_messages_are_read_at_start_up() {
    let script = with(|c| {
        (c == "AT+CMGL=4").then(|| {
            Some(format!(
                "\r\n+CMGL: 5,1,,24\r\n{STORED_PDU}\r\n+CMGL: 6,3,,3\r\n001100\r\n\r\nOK\r\n"
            ))
        })
    });
    let (_h, mut ev, peer) = start(script, config()).await;
    let ModemEvent::Inbound(p) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::Inbound(_))).await
    else {
        unreachable!()
    };
    assert_eq!(
        p.ack.origin(),
        &InboundOrigin::Stored {
            mem: "SM".into(),
            index: 5
        }
    );
    p.ack.ack().await.unwrap().unwrap();
    assert!(peer.saw("AT+CMGD=5"));
    // The stored *sent* message (stat 3) is not an inbound message.
    assert!(!peer.saw("AT+CMGD=6"));
}

#[tokio::test(start_paused = true)]
async fn cmt_direct_and_urcs_inside_a_send() {
    // A +CMT with its PDU arrives between the prompt answer and the +CMGS reference.
    let script = with(|c| {
        c.starts_with("PDU:").then(|| {
            Some(format!(
                "\r\n+CMT: ,24\r\n{STORED_PDU}\r\n\r\n^RSSI:20\r\n\r\n+CMGS: 7\r\n\r\nOK\r\n"
            ))
        })
    });
    let (h, mut ev, _peer) = start(script, config()).await;
    assert_eq!(h.send_part("0011", 1, false).await, Ok(Ok(7)));
    let ModemEvent::Inbound(p) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::Inbound(_))).await
    else {
        unreachable!()
    };
    assert_eq!(p.pdu_hex, STORED_PDU);
    assert_eq!(p.ack.origin(), &InboundOrigin::Direct { cnma: false });
}

#[tokio::test(start_paused = true)]
async fn hung_modem_is_a_link_timeout_then_failed() {
    // Answers init, then never again.
    let alive = Arc::new(Mutex::new(true));
    let a = alive.clone();
    let script: Script = Arc::new(move |c| {
        if c.starts_with("AT+CMGS") {
            *a.lock().unwrap() = false;
        }
        if *a.lock().unwrap() {
            standard(c)
        } else {
            None
        }
    });
    let (h, mut ev, peer) = start(script, config()).await;
    let r = h.send_part("0011", 1, false).await;
    assert!(matches!(r, Err(LinkError::Timeout { .. })), "{r:?}");
    let e = next_matching(&mut ev, |e| {
        matches!(e, ModemEvent::Failed(_) | ModemEvent::Restarted)
    })
    .await;
    assert!(matches!(e, ModemEvent::Failed(_)));
    // The reset command was tried before giving up.
    assert!(peer.saw("AT+CFUN=1,1"));
    assert_eq!(h.health().await, Err(LinkError::Closed));
}

#[tokio::test(start_paused = true)]
async fn stuck_prompt_is_cancelled_with_esc() {
    let script = with(|c| c.starts_with("PDU:").then_some(None));
    let mut cfg = config();
    cfg.probe_attempts = 1;
    let (h, _ev, peer) = start(script, cfg).await;
    let r = h.send_part("0011", 1, false).await;
    // The PDU went out: its fate is unknown, not "not sent".
    assert!(matches!(r, Err(LinkError::Unconfirmed { .. })), "{r:?}");
    let log = peer.log();
    assert!(log.iter().any(|l| l == "PDU:0011"));
    assert!(
        log.iter().any(|l| l == "ESC" || l.contains('\u{1b}')),
        "{log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn vanished_port_is_reported_gone() {
    let (h, mut ev, peer) = start(Arc::new(standard), config()).await;
    h.identity().await.unwrap();
    peer.inject.send(Vec::new()).unwrap();
    let e = next_matching(&mut ev, |e| {
        matches!(e, ModemEvent::Gone(_) | ModemEvent::Failed(_))
    })
    .await;
    assert!(matches!(e, ModemEvent::Gone(_)), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn sim_pin_is_entered_when_asked() {
    let entered = Arc::new(Mutex::new(false));
    let e2 = entered.clone();
    let script: Script = Arc::new(move |c| match c {
        "AT+CPIN?" if !*e2.lock().unwrap() => Some("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n".into()),
        "AT+CPIN=\"1234\"" => {
            *e2.lock().unwrap() = true;
            Some("\r\nOK\r\n".into())
        }
        c => standard(c),
    });
    let mut cfg = config();
    cfg.pin = Some("1234".into());
    let (h, _ev, peer) = start(script, cfg).await;
    h.identity().await.unwrap();
    assert!(peer.saw("AT+CPIN=\"1234\""));

    // Without a configured PIN the actor stops with a clear reason.
    let script: Script = Arc::new(|c| match c {
        "AT+CPIN?" => Some("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n".into()),
        c => standard(c),
    });
    let (_h, mut ev, _peer) = start(script, config()).await;
    let e = next_matching(&mut ev, |e| matches!(e, ModemEvent::Failed(_))).await;
    assert!(matches!(e, ModemEvent::Failed(r) if r.contains("PIN")));
}

/// Source of the flow: public drivers for Huawei MC323/MC703 CDMA modules (AT^HSMSSS=0,0,6,0,
/// AT^HCMGS="<number>", UCS2 + 00 1A, OK, then ^HCMGSS/^HCMGSF).
#[tokio::test(start_paused = true)]
async fn phs_dialect_sends_text_with_hcmgs() {
    let script = with(|c| match c {
        "AT+CGMI" => Some(Some("\r\nHUAWEI\r\n\r\nOK\r\n".into())),
        "AT+CGMM" => Some(Some("\r\nEC1261\r\n\r\nOK\r\n".into())),
        "AT^HCMGS=\"075512345678\"" => Some(Some("\r\n> ".into())),
        // The peer logs the UCS2 payload up to the 0x1A as lossy text; 你好 = 4F60 597D.
        c if c.starts_with("PDU:") => Some(Some(
            "\r\nOK\r\n\r\n^RSSILVL:4\r\n\r\n^HCMGSS: 31\r\n".into(),
        )),
        "AT^HCMGS=\"13800000000\"" => Some(Some("\r\n> ".into())),
        _ => None,
    });
    let (h, _ev, peer) = start(script, config()).await;
    let id = h.identity().await.unwrap();
    assert_eq!(id.dialect, "phs");
    assert_eq!(id.destination_toa, 0x81);
    assert!(peer.saw("ATE0"));
    assert!(!peer.saw("AT"), "PHS modules reject a bare AT");
    assert!(peer.saw("AT^HSMSSS=0,0,6,0"));
    assert!(peer.saw("AT+CMGF=1"));
    // SUBMIT, national DA 075512345678, DCS 08, "你好".
    let r = h
        .send_part("0001000C817055214365870008044F60597D", 18, true)
        .await;
    assert_eq!(r, Ok(Ok(31)));
    assert!(peer.saw("AT^HCMGS=\"075512345678\""));
    assert!(
        peer.saw("PDU:O`Y}\u{0}"),
        "UCS2 4F60 597D then 00 1A: {:?}",
        peer.log()
    );
    assert!(!peer.saw("AT+CMMS=2"));
    // What ^HCMGS cannot carry is refused as a permanent device error, nothing is sent.
    let r = h
        .send_part("0011000B916407281553F80004AA0100", 15, false)
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().class(), ErrorClass::PermanentForMessage);
}

#[tokio::test(start_paused = true)]
async fn hcmgs_failure_urc_is_a_device_error() {
    let mut cfg = config();
    cfg.dialect = dialect::by_name("phs");
    let script = with(|c| match c {
        c if c.starts_with("AT^HCMGS=") => Some(Some("\r\n> ".into())),
        c if c.starts_with("PDU:") => Some(Some("\r\nOK\r\n\r\n^HCMGSF: 106\r\n".into())),
        _ => None,
    });
    let (h, _ev, _peer) = start(script, cfg).await;
    let r = h
        .send_part("0001000C817055214365870008044F60597D", 18, false)
        .await;
    assert_eq!(r, Ok(Err(DeviceError::SendFailed(106))));
}

#[tokio::test(start_paused = true)]
async fn smsc_is_stripped_for_modems_that_choke_on_it() {
    static CHOKES: std::sync::OnceLock<dialect::Dialect> = std::sync::OnceLock::new();
    let d = CHOKES.get_or_init(|| {
        let mut d = dialect::generic::GENERIC;
        d.faults.drops_reply_with_smsc = true;
        d
    });
    let mut cfg = config();
    cfg.dialect = Some(d);
    let (h, _ev, peer) = start(Arc::new(standard), cfg).await;
    assert_eq!(
        h.send_part("07911326040000F00011", 2, false).await,
        Ok(Ok(42))
    );
    assert!(peer.saw("PDU:000011"));
}

/// Issue 10: a part is encoded for the dialect that sends it, when it sends it. The part as
/// acceptance stored it (and as the previous release stored it: SMSC "00", destination
/// +8613912345678 international, TP-MR 0, "hellohello") goes out in national form, type
/// 0x81, on a PDU-mode dialect whose data says `national_address`, with its AT+CMGS length
/// one octet shorter; before, only the ^HCMGS text flow read that field and this PDU went out
/// as stored.
#[tokio::test(start_paused = true)]
async fn a_pdu_mode_dialect_with_national_addresses_gets_the_national_form() {
    static NATIONAL: std::sync::OnceLock<dialect::Dialect> = std::sync::OnceLock::new();
    let d = NATIONAL.get_or_init(|| {
        let mut d = dialect::generic::GENERIC;
        d.faults.national_address = true;
        d
    });
    let mut cfg = config();
    cfg.dialect = Some(d);
    let (h, _ev, peer) = start(Arc::new(standard), cfg).await;
    assert_eq!(h.identity().await.unwrap().destination_toa, 0x81);
    let stored = "0011000D91683119325476F80000AA0AE8329BFD4697D9EC37";
    assert_eq!(h.send_part(stored, 24, false).await, Ok(Ok(42)));
    assert!(peer.saw("AT+CMGS=23"), "{:?}", peer.log());
    assert!(
        peer.saw("PDU:0011000B813119325476F80000AA0AE8329BFD4697D9EC37"),
        "{:?}",
        peer.log()
    );
    // The same stored part on a modem without the fault goes out byte for byte.
    let (h, _ev, peer) = start(Arc::new(standard), config()).await;
    assert_eq!(h.send_part(stored, 24, false).await, Ok(Ok(42)));
    assert!(peer.saw("AT+CMGS=24") && peer.saw(&format!("PDU:{stored}")));
}

#[tokio::test(start_paused = true)]
async fn forced_dialect_and_registration_events() {
    let mut cfg = config();
    cfg.dialect = dialect::by_name("huawei");
    let (h, mut ev, peer) = start(Arc::new(standard), cfg).await;
    assert_eq!(h.identity().await.unwrap().dialect, "huawei");
    assert!(peer.saw("AT^CURC=0"));
    peer.urc("\r\n^RSSI:20\r\n\r\n+CREG: 0\r\n");
    next_matching(&mut ev, |e| matches!(e, ModemEvent::RegistrationLost)).await;
    peer.urc("\r\n+CREG: 5\r\n");
    next_matching(&mut ev, |e| matches!(e, ModemEvent::RegistrationRegained)).await;
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn status_reports_direct_and_stored() {
    let script = with(|c| match c {
        "AT+CMGR=4" => Some(Some(
            "\r\n+CMGR: 0,,25\r\n0791683108200505F006C00D91683109325476F8\r\n\r\nOK\r\n".into(),
        )),
        _ => None,
    });
    let (h, mut ev, peer) = start(script, config()).await;
    h.identity().await.unwrap();
    peer.urc("\r\n+CDS: 25\r\n0791683108200505F006C00D91683109325476F8\r\n");
    let ModemEvent::StatusReport(r) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::StatusReport(_))).await
    else {
        unreachable!()
    };
    assert_eq!(r.length, 25);
    assert_eq!(r.ack.origin(), &InboundOrigin::Direct { cnma: false });
    r.ack.ack().await.unwrap().unwrap();
    assert!(!peer.saw("AT+CNMA"));

    peer.urc("\r\n+CDSI: \"SR\",4\r\n");
    let ModemEvent::StatusReport(r) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::StatusReport(_))).await
    else {
        unreachable!()
    };
    assert_eq!(
        r.ack.origin(),
        &InboundOrigin::Stored {
            mem: "SR".into(),
            index: 4
        }
    );
    assert!(
        peer.saw("AT+CPMS=\"SR\""),
        "the read memory is switched to SR"
    );
    r.ack.ack().await.unwrap().unwrap();
    assert!(peer.saw("AT+CMGD=4"));
}

#[tokio::test(start_paused = true)]
async fn cmt_is_acknowledged_with_cnma_when_the_dialect_needs_it() {
    static PHASE2PLUS: std::sync::OnceLock<dialect::Dialect> = std::sync::OnceLock::new();
    let d = PHASE2PLUS.get_or_init(|| {
        let mut d = dialect::generic::GENERIC;
        d.faults.needs_cnma = true;
        d
    });
    let mut cfg = config();
    cfg.dialect = Some(d);
    let (h, mut ev, peer) = start(Arc::new(standard), cfg).await;
    h.identity().await.unwrap();
    assert!(peer.saw("AT+CSMS=1"));
    peer.urc(&format!("\r\n+CMT: \"\",24\r\n{STORED_PDU}\r\n"));
    let ModemEvent::Inbound(p) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::Inbound(_))).await
    else {
        unreachable!()
    };
    h.health().await.unwrap();
    assert!(!peer.saw("AT+CNMA"), "+CNMA only once the store has it");
    p.ack.ack().await.unwrap().unwrap();
    assert!(peer.saw("AT+CNMA"));
}

#[tokio::test(start_paused = true)]
async fn health_is_polled_between_sends() {
    let polls = Arc::new(Mutex::new(0u32));
    let p2 = polls.clone();
    let script: Script = Arc::new(move |c| {
        if c == "AT+CSQ" {
            let mut n = p2.lock().unwrap();
            *n += 1;
            return Some(format!("\r\n+CSQ: {},99\r\n\r\nOK\r\n", 10 + *n));
        }
        standard(c)
    });
    let mut cfg = config();
    cfg.health_interval = Duration::from_secs(30);
    let (h, mut ev, _peer) = start(script, cfg).await;
    h.identity().await.unwrap();
    let first = h.health().await.unwrap();
    // The paused clock jumps to the next poll as soon as the actor is idle.
    let ModemEvent::HealthChanged(next) = next_matching(
        &mut ev,
        |e| matches!(e, ModemEvent::HealthChanged(x) if x.signal.map(|s| s.rssi) == Some(12)),
    )
    .await
    else {
        unreachable!()
    };
    assert_ne!(first.signal, next.signal);
    assert_eq!(next.dbm, Some(-89));
}

#[tokio::test(start_paused = true)]
async fn cnmi_falls_back_when_status_report_routing_is_refused() {
    let script =
        with(|c| (c == "AT+CNMI=2,1,0,1,0").then(|| Some("\r\n+CMS ERROR: 303\r\n".into())));
    let (h, _ev, peer) = start(script, config()).await;
    h.identity().await.unwrap();
    assert!(peer.saw("AT+CNMI=2,1,0,0,0"));
}

#[tokio::test(start_paused = true)]
async fn hung_modem_that_comes_back_after_reset_is_restarted() {
    // Hangs at the first send and only wakes up when it gets the reset command.
    // (hung now, already hung once)
    let state = Arc::new(Mutex::new((false, false)));
    let s2 = state.clone();
    let script: Script = Arc::new(move |c| {
        let mut st = s2.lock().unwrap();
        let (hung, once) = &mut *st;
        if c.starts_with("AT+CMGS") && !*once {
            *once = true;
            *hung = true;
            return None;
        }
        if c == "AT+CFUN=1,1" {
            *hung = false;
        }
        if *hung {
            None
        } else {
            standard(c)
        }
    });
    let (h, mut ev, _peer) = start(script, config()).await;
    h.identity().await.unwrap();
    let r = h.send_part("0011", 1, false).await;
    assert!(matches!(r, Err(LinkError::Timeout { .. })), "{r:?}");
    next_matching(&mut ev, |e| matches!(e, ModemEvent::Restarted)).await;
    // And it works again.
    assert_eq!(h.send_part("0011", 1, false).await, Ok(Ok(42)));
}

#[tokio::test(start_paused = true)]
async fn modem_silent_at_start_is_reset_and_comes_up() {
    let awake = Arc::new(Mutex::new(false));
    let a2 = awake.clone();
    let script: Script = Arc::new(move |c| {
        let mut awake = a2.lock().unwrap();
        if c == "AT+CFUN=1,1" {
            *awake = true;
            return None; // rebooting: no answer to the reset itself
        }
        if *awake {
            standard(c)
        } else {
            None
        }
    });
    let (h, mut ev, peer) = start(script, config()).await;
    let id = h.identity().await.unwrap();
    assert_eq!(id.dialect, "quectel");
    assert!(peer.saw("AT+CFUN=1,1"));
    next_matching(&mut ev, |e| matches!(e, ModemEvent::Restarted)).await;
}

#[tokio::test(start_paused = true)]
async fn ok_without_a_reference_is_unconfirmed_not_a_retryable_error() {
    let script = with(|c| c.starts_with("PDU:").then(|| Some("\r\nOK\r\n".into())));
    let (h, _ev, _peer) = start(script, config()).await;
    let r = h.send_part("0011", 1, false).await;
    assert!(matches!(r, Err(LinkError::Unconfirmed { .. })), "{r:?}");
    // The modem itself is fine: the actor carries on.
    assert!(h.health().await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Issue 8: the payload's fate, late answers, modems that reboot, status reports kept on the SIM.

#[tokio::test(start_paused = true)]
async fn port_gone_after_the_pdu_is_unconfirmed_not_retryable() {
    // Regression (issue 8.1): the network took the PDU, then the USB modem browned out. The
    // driver used to answer a plain `Gone`, which the runner retried on another SIM: a second
    // SMS. It must say the payload may have left.
    let script = with(|c| c.starts_with("PDU:").then(|| Some(DROP.to_string())));
    let (h, mut ev, peer) = start(script, config()).await;
    let r = h.send_part("0011", 1, false).await;
    let e = r.expect_err("the port vanished");
    assert!(matches!(e, LinkError::Unconfirmed { .. }), "{e:?}");
    assert_eq!(e.payload_fate(), PayloadFate::MaybeSent);
    assert!(matches!(e.link(), LinkError::Gone(_)), "{e:?}");
    assert!(peer.saw("PDU:0011"));
    // The actor still sees a port gone underneath.
    let gone = next_matching(&mut ev, |e| matches!(e, ModemEvent::Gone(_))).await;
    assert!(matches!(gone, ModemEvent::Gone(_)));
}

#[tokio::test(start_paused = true)]
async fn port_gone_before_the_prompt_was_not_sent() {
    let script = with(|c| c.starts_with("AT+CMGS=").then(|| Some(DROP.to_string())));
    let (h, _ev, peer) = start(script, config()).await;
    let e = h.send_part("0011", 1, false).await.expect_err("port gone");
    assert_eq!(e.payload_fate(), PayloadFate::NotSent, "{e:?}");
    assert!(!peer.log().iter().any(|l| l.starts_with("PDU:")));
}

#[tokio::test(start_paused = true)]
async fn phs_text_flow_gone_after_the_text_is_unconfirmed() {
    // The same fate rule for the ^HCMGS flow: OK came, the outcome URC did not, the port went.
    let mut cfg = config();
    cfg.dialect = dialect::by_name("phs");
    let script = with(|c| match c {
        "AT^HCMGS=\"075512345678\"" => Some(Some("\r\n> ".into())),
        c if c.starts_with("PDU:") => Some(Some(DROP.to_string())),
        _ => None,
    });
    let (h, _ev, _peer) = start(script, cfg).await;
    let e = h
        .send_part("0001000C817055214365870008044F60597D", 18, false)
        .await
        .expect_err("port gone");
    assert_eq!(e.payload_fate(), PayloadFate::MaybeSent, "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn late_cmgs_answer_is_not_taken_for_the_next_send() {
    // Regression (issue 8, late answer): the first send times out after its PDU; its
    // "+CMGS: 17" then arrives in front of the next send's prompt. The old session returned
    // it as the next send's result (reference 17, PDU never written). Now it is reported as a
    // late reference and the next send goes through with its own answer.
    let sends = Arc::new(Mutex::new(0u32));
    let n = sends.clone();
    let script = with(move |c| {
        if c.starts_with("AT+CMGS=") {
            let mut k = n.lock().unwrap();
            *k += 1;
            return Some(Some(if *k == 1 {
                "\r\n> ".into()
            } else {
                "\r\n+CMGS: 17\r\n\r\nOK\r\n\r\n> ".into()
            }));
        }
        if c == "PDU:0011" {
            return Some(None); // silent: the answer comes late
        }
        None
    });
    let mut cfg = config();
    cfg.send_timeout = Duration::from_secs(5);
    let (h, mut ev, peer) = start(script, cfg).await;
    let first = h.send_part("0011", 1, false).await.expect_err("timed out");
    assert_eq!(first.payload_fate(), PayloadFate::MaybeSent);
    let second = h.send_part("0022", 1, false).await;
    assert_eq!(second, Ok(Ok(42)), "{:?}", peer.log());
    assert!(peer.saw("PDU:0022"));
    let late = next_matching(&mut ev, |e| matches!(e, ModemEvent::LateReference { .. })).await;
    assert!(
        matches!(late, ModemEvent::LateReference { tp_mr: 17 }),
        "{late:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn late_cmgs_answer_in_front_of_a_probe_is_kept() {
    // The late answer lands in front of the recovery probe's own OK: the probe must not take
    // the late OK for its own, and the reference is reported.
    let probes = Arc::new(Mutex::new(0u32));
    let n = probes.clone();
    let script = with(move |c| {
        if c == "PDU:0011" {
            return Some(None);
        }
        // The ESC written after the timeout sits in front of the probe's line.
        if c.trim_start_matches('\u{1b}') == "AT" {
            let mut k = n.lock().unwrap();
            *k += 1;
            if *k == 1 {
                return Some(Some("\r\n+CMGS: 9\r\n\r\nOK\r\n\r\nOK\r\n".into()));
            }
        }
        None
    });
    let mut cfg = config();
    cfg.send_timeout = Duration::from_secs(5);
    let (h, mut ev, _peer) = start(script, cfg).await;
    let first = h.send_part("0011", 1, false).await.expect_err("timed out");
    assert_eq!(first.payload_fate(), PayloadFate::MaybeSent);
    let late = next_matching(&mut ev, |e| matches!(e, ModemEvent::LateReference { .. })).await;
    assert!(
        matches!(late, ModemEvent::LateReference { tp_mr: 9 }),
        "{late:?}"
    );
    assert_eq!(h.send_part("0022", 1, false).await, Ok(Ok(42)));
}

#[tokio::test(start_paused = true)]
async fn echo_after_ate0_stops_a_send_before_its_pdu_and_reinitialises() {
    // Regression (issue 8, reboot): a modem that rebooted echoes again and is back in text
    // mode; writing the PDU as text would send garbage to a number. The send stops before the
    // prompt (not sent, retryable) and the modem is initialised again.
    let rebooted = Arc::new(Mutex::new(false));
    let r2 = rebooted.clone();
    let script = with(move |c| {
        if c.starts_with("AT+CMGS=") && !*r2.lock().unwrap() {
            *r2.lock().unwrap() = true;
            return Some(Some(format!("{c}\r\r\n> ")));
        }
        None
    });
    let (h, mut ev, peer) = start(script, config()).await;
    h.identity().await.unwrap();
    let e = h.send_part("0011", 1, false).await.expect_err("reset");
    assert!(matches!(e, LinkError::Reset(_)), "{e:?}");
    assert_eq!(e.payload_fate(), PayloadFate::NotSent);
    assert!(!peer.saw("PDU:0011"), "{:?}", peer.log());
    let restarted = next_matching(&mut ev, |e| matches!(e, ModemEvent::Restarted)).await;
    assert!(matches!(restarted, ModemEvent::Restarted));
    let inits = peer.log().iter().filter(|l| *l == "AT+CMGF=0").count();
    assert_eq!(inits, 2, "initialised again: {:?}", peer.log());
    assert_eq!(h.send_part("0011", 1, false).await, Ok(Ok(42)));
}

#[tokio::test(start_paused = true)]
async fn power_up_burst_reinitialises_the_modem() {
    let (h, mut ev, peer) = start(Arc::new(standard), config()).await;
    h.identity().await.unwrap();
    peer.urc("\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n");
    let restarted = next_matching(&mut ev, |e| matches!(e, ModemEvent::Restarted)).await;
    assert!(matches!(restarted, ModemEvent::Restarted));
    let inits = peer
        .log()
        .iter()
        .filter(|l| *l == "AT+CNMI=2,1,0,1,0")
        .count();
    assert!(inits >= 2, "initialised again: {:?}", peer.log());
    assert_eq!(h.send_part("0011", 1, false).await, Ok(Ok(42)));
}

#[tokio::test(start_paused = true)]
async fn status_reports_stored_on_the_sim_are_read_at_start_up() {
    // Reports that arrived while nobody read the port sit in "SR" memory: read at start-up
    // and deleted only after the ack (issue 8, settling unknown parts).
    const REPORT: &str = "07911326040000F006D60B911326880736F4111011719551401110117195714000";
    let sr = Arc::new(Mutex::new(false));
    let s2 = sr.clone();
    let script = with(move |c| match c {
        "AT+CPMS=\"SR\"" => {
            *s2.lock().unwrap() = true;
            Some(Some("\r\n+CPMS: 1,10,0,50,0,50\r\n\r\nOK\r\n".into()))
        }
        c if c.starts_with("AT+CPMS=") => {
            *s2.lock().unwrap() = false;
            None
        }
        "AT+CMGL=4" if *s2.lock().unwrap() => Some(Some(format!(
            "\r\n+CMGL: 3,1,,26\r\n{REPORT}\r\n\r\nOK\r\n"
        ))),
        _ => None,
    });
    let (_h, mut ev, peer) = start(script, config()).await;
    let report = next_matching(&mut ev, |e| matches!(e, ModemEvent::StatusReport(_))).await;
    let ModemEvent::StatusReport(pdu) = report else {
        unreachable!()
    };
    assert_eq!(pdu.pdu_hex, REPORT);
    assert_eq!(
        pdu.ack.origin(),
        &InboundOrigin::Stored {
            mem: "SR".into(),
            index: 3
        }
    );
    assert!(!peer.saw("AT+CMGD=3"), "not deleted before the ack");
    pdu.ack.ack().await.unwrap().unwrap();
    assert!(peer.saw("AT+CMGD=3"));
}

/// A script for a PHS module (HUAWEI EC1261): `+CNMI?` answers what was last set, and
/// `reboot` puts back the power-up default (0,0,0,0,0) the way a module that rebooted does.
fn phs_script(reboot: Arc<Mutex<bool>>) -> Script {
    with(move |c| {
        match c {
        "AT+CGMI" => Some(Some("\r\nHUAWEI\r\n\r\nOK\r\n".into())),
        "AT+CGMM" => Some(Some("\r\nEC1261\r\n\r\nOK\r\n".into())),
        "AT+CNMI=2,1,0,2,0" => {
            *reboot.lock().unwrap() = false;
            None
        }
        "AT+CNMI?" => Some(Some(if *reboot.lock().unwrap() {
            "\r\n+CNMI: 0,0,0,0,0\r\n\r\nOK\r\n".into()
        } else {
            "\r\n+CNMI: 2,1,0,2,0\r\n\r\nOK\r\n".into()
        })),
        "AT+CPMS=\"ME\",\"ME\",\"ME\"" => Some(Some("\r\n+CPMS: 1,100,1,100,1,100\r\n\r\nOK\r\n".into())),
        // Slot 1 is empty; slot 2 holds "TD" from a PHS number (Huawei CDMA manual form).
        "AT^HCMGR=1" => Some(Some("\r\nOK\r\n".into())),
        "AT^HCMGR=2" => Some(Some(
            "\r\n^HCMGR:075587654321,2026,11,29,20,30,01,0,1,2,0,0,0,0\r\nTD\u{1a}\r\n\r\nOK\r\n"
                .into(),
        )),
        "AT^HCMGR=5" => Some(Some(
            "\r\n^HCMGR:13912345678,2026,11,29,20,31,00,0,6,4,0,0,0,0\r\n\0T\0D\0\u{1a}\r\n\r\nOK\r\n"
                .into(),
        )),
        _ => None,
    }
    })
}

/// `Faults::never_echoes`: a PHS module cannot show a reboot by echo, so the health poll
/// reads `+CNMI?`; routing back at the power-up default re-initialises it. Dialects that echo
/// are not asked.
#[tokio::test(start_paused = true)]
async fn a_module_that_never_echoes_is_found_rebooted_by_its_lost_routing() {
    let reboot = Arc::new(Mutex::new(false));
    let mut cfg = config();
    cfg.health_interval = Duration::from_secs(5);
    let (h, mut ev, peer) = start(phs_script(reboot.clone()), cfg).await;
    assert_eq!(h.identity().await.unwrap().dialect, "phs");
    assert!(peer.saw("AT+CNMI?"));
    *reboot.lock().unwrap() = true;
    next_matching(&mut ev, |e| matches!(e, ModemEvent::Restarted)).await;
    assert!(
        !*reboot.lock().unwrap(),
        "routing set again by the new init"
    );

    let (h, _ev, peer) = start(Arc::new(standard), config()).await;
    h.identity().await.unwrap();
    assert!(!peer.saw("AT+CNMI?"), "a modem that echoes is not polled");
}

/// A module that echoes whatever ATE0 says is not taken for one that keeps rebooting (the
/// session takes echo after ATE0 as a reboot sign): before, every command's echo started
/// init again.
#[tokio::test(start_paused = true)]
async fn a_module_that_echoes_regardless_is_not_rebooting() {
    let script: Script = Arc::new(|c: &str| {
        standard(c).map(|r| {
            if c.starts_with("PDU:") {
                r
            } else {
                format!("{c}\r{r}")
            }
        })
    });
    let (h, mut ev, peer) = start(script, config()).await;
    h.identity().await.unwrap();
    let r = h
        .send_part(
            "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
            23,
            false,
        )
        .await;
    assert_eq!(r, Ok(Ok(42)));
    let restarted = tokio::time::timeout(
        Duration::from_secs(30),
        next_matching(&mut ev, |e| matches!(e, ModemEvent::Restarted)),
    )
    .await;
    assert!(restarted.is_err(), "taken for a reboot");
    assert_eq!(
        peer.log().iter().filter(|l| *l == "AT+CGMI").count(),
        1,
        "initialised once"
    );
}

/// `Faults::national_address`: a PHS module is given the destination in national form (it
/// refuses a "+"); PHS stored texts are read with ^HCMGR at start-up (slots counted by
/// +CPMS) and become SMS-DELIVERs whose ack deletes the slot. No init line is chained.
#[tokio::test(start_paused = true)]
async fn phs_sends_national_and_reads_stored_texts_with_hcmgr() {
    let script = {
        let inner = phs_script(Arc::new(Mutex::new(false)));
        Arc::new(move |c: &str| match c {
            "AT^HCMGS=\"13912345678\"" => Some("\r\n> ".into()),
            c if c.starts_with("PDU:") => Some("\r\nOK\r\n\r\n^HCMGSS:7\r\n".into()),
            c => inner(c),
        }) as Script
    };
    let (h, mut ev, peer) = start(script, config()).await;
    let ModemEvent::Inbound(p) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::Inbound(_))).await
    else {
        unreachable!()
    };
    let sms = smsgate::pdu::Sms::parse_hex(&p.pdu_hex).unwrap();
    let smsgate::pdu::Tpdu::Deliver(d) = sms.tpdu else {
        panic!("not a DELIVER")
    };
    assert_eq!(d.sender.to_string(), "075587654321");
    assert_eq!(d.user_data.body.text(), Some("TD"));
    assert_eq!(
        p.ack.origin(),
        &InboundOrigin::Stored {
            mem: "ME".into(),
            index: 2
        }
    );
    assert!(peer.saw("AT^HCMGR=1") && peer.saw("AT^HCMGR=2"));
    assert!(
        !peer.saw("AT^HCMGR=3"),
        "+CPMS said one message: {:?}",
        peer.log()
    );
    assert!(!peer.saw("AT+CMGL=4"), "no PDU listing in text mode");
    p.ack.ack().await.unwrap().unwrap();
    assert!(peer.saw("AT+CMGD=2"));
    // +CMTI: read by ^HCMGR; a UCS2 body ("TD" = 00 54 00 44, NULs inside) arrives whole.
    peer.urc("\r\n+CMTI: \"ME\",5\r\n");
    let ModemEvent::Inbound(p) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::Inbound(_))).await
    else {
        unreachable!()
    };
    let sms = smsgate::pdu::Sms::parse_hex(&p.pdu_hex).unwrap();
    assert_eq!(sms.tpdu.user_data().and_then(|u| u.body.text()), Some("TD"));
    // ^HCMT: routed directly, nothing to delete; 退 = 90 00 has a NUL inside.
    let mut hcmt = b"\r\n^HCMT:075587654321,2026,11,29,20,32,00,0,6,4,0,0,0,0\r\n".to_vec();
    hcmt.extend([0x90, 0x00, 0x8B, 0xA2, 0x00, 0x1A, b'\r', b'\n']);
    peer.inject.send(hcmt).unwrap();
    let ModemEvent::Inbound(p) =
        next_matching(&mut ev, |e| matches!(e, ModemEvent::Inbound(_))).await
    else {
        unreachable!()
    };
    assert_eq!(p.ack.origin(), &InboundOrigin::Direct { cnma: false });
    let sms = smsgate::pdu::Sms::parse_hex(&p.pdu_hex).unwrap();
    assert_eq!(
        sms.tpdu.user_data().and_then(|u| u.body.text()),
        Some("退订")
    );
    // SUBMIT to +8613912345678 (international), "hellohello": dialled as 13912345678.
    let r = h
        .send_part(
            "0011000D91683119325476F80000AA0AE8329BFD4697D9EC37",
            24,
            false,
        )
        .await;
    assert_eq!(r, Ok(Ok(7)), "{:?}", peer.log());
    assert!(peer.saw("AT^HCMGS=\"13912345678\""));
    assert!(
        !peer.log().iter().any(|l| l.contains(';')),
        "one command per line: {:?}",
        peer.log()
    );
}
