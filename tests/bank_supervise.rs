//! The bank's supervision over real pseudo-terminals, with a test host in place of the daemon:
//! a port that appears under the configured glob gets a modem actor (hot-plug), one that
//! vanishes ends its supervisor, and with `modems.dialect = "auto"` the udev rules'
//! `SMSGATE_DIALECT` hint for the port's device (from a udev database in a temporary directory)
//! picks the dialect instead of the modem's own +CGMI/+CGMM answers; a hint naming no known
//! dialect is ignored (the modem is probed as before).

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smsgate::bank::{BankOptions, Host, PortPatterns};
use smsgate::modem::{Identity, ModemConfig, ModemEvent, ModemHandle};
use tokio::sync::{mpsc, watch};

/// A modem that calls itself "Acme X1": nothing in its answers names a vendor dialect.
fn reply(cmd: &str) -> String {
    let ok = |b: &str| format!("{b}\r\nOK\r\n");
    match cmd {
        "AT+CGMI" => ok("\r\nAcme\r\n"),
        "AT+CGMM" => ok("\r\nX1\r\n"),
        "AT+CIMI" => ok("\r\n460011234567890\r\n"),
        "AT+CPIN?" => ok("\r\n+CPIN: READY\r\n"),
        c if c.starts_with("AT+CRSM") => ok("\r\n+CRSM: 144,0,\"98681071389800394321\"\r\n"),
        "AT+CCID" => ok("\r\n89860117838009934120\r\n"),
        _ => ok(""),
    }
}

/// Answers on the master side of a pty in its own thread; once `unplugged` is set it closes
/// the master (the slave then reads EIO, as a tty whose USB device went away).
fn responder(master: std::fs::File, unplugged: Arc<AtomicBool>) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("O_NONBLOCK");
    std::thread::spawn(move || {
        let mut master = master;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        while !unplugged.load(Ordering::SeqCst) {
            let n = match master.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => n,
                // EIO: no slave open (yet, or between the driver's reopens).
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::EIO) =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(_) => return,
            };
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.iter().position(|b| *b == b'\r') {
                let line = String::from_utf8_lossy(&buf[..end]).trim().to_string();
                buf.drain(..=end);
                if master.write_all(reply(&line).as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
}

/// A virtual modem on a new pty: the slave's path, its udev data file name, and the switch
/// that unplugs it.
fn plug() -> (PathBuf, String, Arc<AtomicBool>) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pty.slave).expect("ttyname");
    let rdev = std::fs::metadata(&path).unwrap().rdev();
    let file = format!(
        "c{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    // Only the driver holds the slave: closing the master must leave nothing open on it.
    drop(pty.slave);
    let unplugged = Arc::new(AtomicBool::new(false));
    responder(std::fs::File::from(pty.master), Arc::clone(&unplugged));
    (path, file, unplugged)
}

/// Stands in for the daemon: reports what each running modem said and why it ended.
struct Probe {
    ready: mpsc::UnboundedSender<(String, Identity)>,
    ended: mpsc::UnboundedSender<String>,
}

impl Host for Probe {
    fn modem_config(&self, _port: &str) -> ModemConfig {
        let mut cfg = ModemConfig::new("unnamed");
        cfg.health_interval = Duration::from_secs(3600);
        cfg.probe_timeout = Duration::from_millis(300);
        cfg.probe_attempts = 2;
        cfg.reopen_backoff = vec![Duration::from_millis(10)];
        cfg // dialect None: modems.dialect = "auto"
    }

    async fn run_modem(
        &self,
        port: &str,
        handle: ModemHandle,
        mut events: mpsc::Receiver<ModemEvent>,
        stop: &mut watch::Receiver<bool>,
    ) -> String {
        let _handle = handle;
        let reason = loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ModemEvent::Ready(id)) => {
                        let _ = self.ready.send((port.to_string(), id));
                    }
                    Some(ModemEvent::Gone(why)) => break format!("gone: {why}"),
                    Some(ModemEvent::Failed(why)) => break format!("failed: {why}"),
                    Some(_) => {}
                    None => break "actor ended".to_string(),
                },
                _ = stop.changed() => break "stopping".to_string(),
            }
        };
        let _ = self.ended.send(port.to_string());
        reason
    }
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within 15 s"))
        .unwrap_or_else(|| panic!("the bank stopped before {what}"))
}

fn udev_entry(root: &Path, file: &str, dialect: &str) {
    std::fs::write(
        root.join(file),
        format!("S:gsm/usb1-1.2-if02\nE:ID_VENDOR_ID=1e0e\nE:SMSGATE_DIALECT={dialect}\nE:SMSGATE_PORT_ROLE=primary\n"),
    )
    .unwrap();
}

#[tokio::test]
async fn ports_come_and_go_and_the_udev_hint_picks_the_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let udev = dir.path().join("udev-data");
    std::fs::create_dir(&udev).unwrap();
    let ports = dir.path().join("gsm");
    std::fs::create_dir(&ports).unwrap();

    // Present at start, hinted "simcom" by the rules: the hint wins over detection.
    let (slave0, file0, unplug0) = plug();
    udev_entry(&udev, &file0, "simcom");
    let port0 = ports.join("modem0");
    std::os::unix::fs::symlink(&slave0, &port0).unwrap();

    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let host = Arc::new(Probe {
        ready: ready_tx,
        ended: ended_tx,
    });
    let patterns = PortPatterns::new(&[format!("{}/*", ports.display())]).unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let bank = tokio::spawn(smsgate::bank::supervise::run(
        host,
        patterns,
        BankOptions {
            udev_data: udev.clone(),
        },
        stop,
    ));

    let (port, id) = next(&mut ready, "modem0 ready").await;
    assert_eq!(port, port0.to_string_lossy());
    assert_eq!(id.dialect, "simcom", "the udev hint names the dialect");

    // Hot-plugged later, hinted with a name no dialect has: ignored, the modem is probed.
    let (slave1, file1, unplug1) = plug();
    udev_entry(&udev, &file1, "simcomm");
    let port1 = ports.join("modem1");
    std::os::unix::fs::symlink(&slave1, &port1).unwrap();
    let (port, id) = next(&mut ready, "modem1 ready").await;
    assert_eq!(port, port1.to_string_lossy());
    assert_eq!(
        id.dialect, "generic",
        "an unknown hint falls back to probing"
    );

    // Unplugged: the link goes and the device with it; its actor ends, nothing restarts it.
    std::fs::remove_file(&port1).unwrap();
    unplug1.store(true, Ordering::SeqCst);
    assert_eq!(
        next(&mut ended, "modem1 ended").await,
        port1.to_string_lossy()
    );

    let _ = stop_tx.send(true);
    assert_eq!(
        next(&mut ended, "modem0 ended").await,
        port0.to_string_lossy()
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), ready.recv())
            .await
            .map_or(true, |r| r.is_none()),
        "no modem started after the stop"
    );
    bank.abort();
    unplug0.store(true, Ordering::SeqCst);
}
