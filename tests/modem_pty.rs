//! The driver over a real pseudo-terminal: `nix::pty::openpty` gives a pair, `Modem::open`
//! opens the slave path through tokio-serial (exclusively), and a tiny scripted responder on
//! the master side plays the modem with a few canned replies. Proves init, a send through the
//! "> " prompt, a +CMTI inbound flow with ack-then-delete, and a hung modem ending the send
//! as a `LinkError::Timeout`. (The real virtual modem bank is `smsgate sim`, tested elsewhere.)

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsgate::modem::{InboundOrigin, LinkError, Modem, ModemConfig, ModemEvent};

const PDU: &str = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

fn reply(cmd: &str) -> String {
    let ok = |b: &str| format!("{b}\r\nOK\r\n");
    match cmd {
        "AT+CGMI" => ok("\r\nSIMCOM_Ltd\r\n"),
        "AT+CGMM" => ok("\r\nSIMCOM_SIM800L\r\n"),
        "AT+CIMI" => ok("\r\n460011234567890\r\n"),
        "AT+CCID" => ok("\r\n89860117838009934120\r\n"),
        "AT+CPIN?" => ok("\r\n+CPIN: READY\r\n"),
        "AT+CSQ" => ok("\r\n+CSQ: 25,0\r\n"),
        "AT+CREG?" => ok("\r\n+CREG: 1,1\r\n"),
        "AT+CMGR=3" => ok(&format!("\r\n+CMGR: 0,,24\r\n{PDU}\r\n")),
        c if c.starts_with("AT+CMGS=") => "\r\n> ".into(),
        c if c.starts_with("PDU:") => ok("\r\n+CMGS: 88\r\n"),
        _ => ok(""),
    }
}

/// Blocking responder on the master side, in its own thread.
/// While `hung`, nothing is answered; with `wake_on_reset`, the reset command ends the hang.
fn responder(
    mut master: std::fs::File,
    log: Arc<Mutex<Vec<String>>>,
    hung: Arc<AtomicBool>,
    wake_on_reset: bool,
) {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        let mut in_prompt = false;
        loop {
            let n = match master.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                let stop: &[u8] = if in_prompt { &[0x1a, 0x1b] } else { b"\r" };
                let Some(end) = buf.iter().position(|b| stop.contains(b)) else {
                    break;
                };
                let text = String::from_utf8_lossy(&buf[..end]).to_string();
                buf.drain(..=end);
                let entry = if in_prompt {
                    format!("PDU:{text}")
                } else {
                    text
                };
                in_prompt = false;
                log.lock().unwrap().push(entry.clone());
                if wake_on_reset && entry == "AT+CFUN=1,1" {
                    hung.store(false, Ordering::SeqCst);
                }
                if hung.load(Ordering::SeqCst) {
                    continue;
                }
                let r = reply(&entry);
                in_prompt = r.ends_with("> ");
                if master.write_all(r.as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
}

#[tokio::test]
async fn driver_over_a_real_pty() {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pty.slave).expect("ttyname");
    let master = std::fs::File::from(pty.master);
    let mut injector = master.try_clone().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let hung = Arc::new(AtomicBool::new(false));
    responder(master, log.clone(), hung.clone(), false);
    let saw = |c: &str| log.lock().unwrap().iter().any(|l| l == c);

    let mut cfg = ModemConfig::new(path.to_string_lossy());
    cfg.health_interval = Duration::from_secs(3600);
    cfg.probe_timeout = Duration::from_millis(300);
    cfg.probe_attempts = 2;
    cfg.send_timeout = Duration::from_secs(1);
    cfg.reopen_backoff = vec![Duration::from_millis(10)];
    let (h, mut ev) = Modem::open(&path, &cfg).expect("open the pty slave");

    // Init.
    let id = h.identity().await.unwrap();
    assert_eq!(id.dialect, "simcom");
    assert_eq!(id.iccid.as_deref(), Some("89860117838009934120"));
    assert!(saw("ATE0") && saw("AT+CMGF=0") && saw("AT+CNMI=2,1,0,1,0"));

    // The tty is held exclusively (TIOCEXCL), so ModemManager cannot open it behind our back.
    let mut excl: libc::c_int = 0;
    // SAFETY: TIOCGEXCL writes one int into `excl`, which outlives the call.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&pty.slave),
            libc::TIOCGEXCL,
            &mut excl,
        )
    };
    assert_eq!(rc, 0, "TIOCGEXCL");
    assert_eq!(excl, 1, "the driver opened the port exclusively");

    // A send through the prompt.
    assert_eq!(
        h.send_part("0011000B911326880736F40000A70341E211", 16, false)
            .await,
        Ok(Ok(88))
    );
    assert!(saw("PDU:0011000B911326880736F40000A70341E211"));

    // +CMTI: read, hand over, delete only after the ack.
    injector.write_all(b"\r\n+CMTI: \"SM\",3\r\n").unwrap();
    let inbound = loop {
        match tokio::time::timeout(Duration::from_secs(10), ev.recv()).await {
            Ok(Some(ModemEvent::Inbound(p))) => break p,
            Ok(Some(_)) => continue,
            other => panic!("no inbound event: {other:?}"),
        }
    };
    assert_eq!(inbound.pdu_hex, PDU);
    assert_eq!(
        inbound.ack.origin(),
        &InboundOrigin::Stored {
            mem: "SM".into(),
            index: 3
        }
    );
    h.health().await.unwrap();
    assert!(saw("AT+CMGR=3") && !saw("AT+CMGD=3"));
    assert_eq!(inbound.ack.ack().await, Ok(Ok(())));
    assert!(saw("AT+CMGD=3"));

    // The modem hangs: the send ends as a link error, not a device error.
    hung.store(true, Ordering::SeqCst);
    let r = h.send_part("0011", 1, false).await;
    assert!(matches!(r, Err(LinkError::Timeout { .. })), "{r:?}");
    // Recovery probes, reopens the port, tries the reset, then gives up.
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(20), ev.recv()).await {
            Ok(Some(e @ (ModemEvent::Failed(_) | ModemEvent::Gone(_)))) => break e,
            Ok(Some(_)) => continue,
            other => panic!("actor did not give up: {other:?}"),
        }
    };
    assert!(matches!(end, ModemEvent::Failed(_)), "{end:?}");
    assert!(saw("AT+CFUN=1,1"));
    drop(pty.slave);
}

#[tokio::test]
async fn hung_modem_is_reopened_reset_and_restarted() {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pty.slave).expect("ttyname");
    let master = std::fs::File::from(pty.master);
    let log = Arc::new(Mutex::new(Vec::new()));
    let hung = Arc::new(AtomicBool::new(false));
    responder(master, log.clone(), hung.clone(), true);

    let mut cfg = ModemConfig::new(path.to_string_lossy());
    cfg.health_interval = Duration::from_secs(3600);
    cfg.probe_timeout = Duration::from_millis(300);
    cfg.probe_attempts = 1;
    cfg.send_timeout = Duration::from_secs(1);
    cfg.reopen_backoff = vec![Duration::from_millis(10), Duration::from_millis(10)];
    cfg.read_stored_at_start = false;
    let (h, mut ev) = Modem::open(&path, &cfg).expect("open the pty slave");
    h.identity().await.unwrap();

    hung.store(true, Ordering::SeqCst);
    let r = h.send_part("0011", 1, false).await;
    assert!(matches!(r, Err(LinkError::Timeout { .. })), "{r:?}");
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ev.recv()).await {
            Ok(Some(ModemEvent::Restarted)) => break,
            Ok(Some(ModemEvent::Failed(r))) => panic!("gave up: {r}"),
            Ok(Some(_)) => continue,
            other => panic!("no restart: {other:?}"),
        }
    }
    let inits = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| *l == "AT+CMGF=0")
        .count();
    assert_eq!(inits, 2, "init ran again after the reset");
    assert_eq!(h.send_part("0011", 1, false).await, Ok(Ok(88)));
    drop(pty.slave);
}
