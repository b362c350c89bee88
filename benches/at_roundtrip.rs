//! Command round trip through a real pseudo-terminal to the virtual modem: the driver's own
//! `AtSession` over the real serial crate (tokio-serial) sends AT+CSQ to a modem of the virtual
//! bank and parses the answer. Prints p50/p99 over many round trips (target p50 <= 200 us).
//! Run: `cargo bench --bench at_roundtrip`.

use std::time::{Duration, Instant};

use smsgate::at::{Csq, Digester, EchoOff};
use smsgate::modem::{open_port, AtSession};
use smsgate::sim::{Bank, Dialect, DialectChoice, SimConfig};

const WARM_UP: usize = 200;
const SAMPLES: usize = 5_000;

fn main() {
    // `cargo test --benches` runs bench targets once with no argument meaning "bench": keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let samples = if quick { 50 } else { SAMPLES };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = SimConfig::new(1, dir.path().join("bank"));
        cfg.dialect = DialectChoice::One(Dialect::Generic);
        cfg.control_socket = false;
        cfg.chatter = None;
        cfg.seed = Some(1);
        let bank = Bank::start(cfg).await.expect("virtual bank");
        let port = open_port(&bank.port_path(0).to_string_lossy(), 115_200).expect("open pty");
        let mut session = AtSession::new(port, Digester::new());
        session
            .send(&EchoOff)
            .await
            .expect("link")
            .expect("ATE0 accepted");
        let mut times = Vec::with_capacity(samples);
        for i in 0..WARM_UP + samples {
            let t = Instant::now();
            session.send(&Csq).await.expect("link").expect("+CSQ");
            if i >= WARM_UP {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "AT+CSQ round trip over a real pty to the virtual modem, {} samples: p50 {:?}, p99 {:?}, max {:?} (target p50 <= 200us; load {})",
            times.len(),
            pct(0.5),
            pct(0.99),
            times.last().copied().unwrap_or(Duration::ZERO),
            load.split_whitespace().next().unwrap_or("?")
        );
        drop(session);
        bank.shutdown().await;
    });
}
