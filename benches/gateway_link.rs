//! One CMPP link (`smsgate::gateway`, window 16, no rate limit) over real TCP on loopback to the
//! virtual gateway of the in-process sim bank (which logs every SUBMIT to events.jsonl, as in
//! the tests): submits per second with many callers (target >= 10,000/s: the carrier's limit,
//! not smsgate, must cap a link), and the latency of one submit on an idle link, from the
//! call to the Accepted outcome (target p50 <= 5 ms). Both programs share the machine's cores.
//! Run: `cargo bench --bench gateway_link`.

use std::time::{Duration, Instant};

use smsgate::gateway::{GatewayConfig, GatewayEvent, GatewayLink, GatewayPart, SubmitOutcome};
use smsgate::pdu::{encode_submit, Address, SubmitOptions};
use smsgate::sim::{Bank, IsmgConfig, SimConfig};

const CALLERS: usize = 64;

fn main() {
    // `cargo test --benches` runs bench targets without "--bench": keep it short then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (total, samples) = if quick { (2_000, 50) } else { (100_000, 2_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = SimConfig::new(0, dir.path().join("bank"));
        cfg.control_socket = false;
        cfg.cmpp = Some(IsmgConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            "901234",
            b"secret",
        ));
        let bank = Bank::start(cfg).await.expect("virtual gateway");
        let addr = bank.cmpp_addr().expect("cmpp address");
        let gw = GatewayConfig::new("bench", &addr.to_string(), "901234", "secret", "1069012345");
        let (link, mut events) = GatewayLink::spawn(gw);
        loop {
            match events.recv().await {
                Some(GatewayEvent::Up { .. }) => break,
                Some(GatewayEvent::Down { reason, .. }) => panic!("link down: {reason}"),
                Some(_) => {}
                None => panic!("link ended"),
            }
        }
        let opts = SubmitOptions::new(Address::parse_number("+8613800138000").expect("number"));
        let hex = encode_submit(&opts, "您的验证码是 123456，五分钟内有效。").expect("encode")[0].hex();
        let part = GatewayPart::new(hex, "42");

        // Idle latency: one submit at a time.
        let mut times = Vec::with_capacity(samples);
        for i in 0..samples + 100 {
            let t = Instant::now();
            let out = link.submit(&part).await.expect("submit");
            assert!(matches!(out, SubmitOutcome::Accepted { .. }), "{out:?}");
            if i >= 100 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "gateway idle submit latency over one CMPP 3.0 link, {} samples: p50 {:?}, p99 {:?}, max {:?} (target p50 <= 5ms)",
            times.len(),
            pct(0.5),
            pct(0.99),
            times.last().copied().unwrap_or(Duration::ZERO)
        );

        // Throughput: CALLERS concurrent callers, window 16.
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for c in 0..CALLERS {
            let link = link.clone();
            let part = part.clone();
            let n = total / CALLERS + usize::from(c < total % CALLERS);
            set.spawn(async move {
                for _ in 0..n {
                    let out = link.submit(&part).await.expect("submit");
                    assert!(matches!(out, SubmitOutcome::Accepted { .. }), "{out:?}");
                }
            });
        }
        set.join_all().await;
        let dt = t.elapsed();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "gateway throughput over one CMPP 3.0 link, window 16, {CALLERS} callers: {total} submits in {dt:?} = {:.0}/s (target >= 10,000/s; load {})",
            total as f64 / dt.as_secs_f64(),
            load.split_whitespace().next().unwrap_or("?")
        );
        link.shutdown(Duration::from_secs(5)).await;
        bank.shutdown().await;
    });
}
