//! The soak's short form, run in CI as an ordinary test (issue 8): 1,000 messages, 10 kill -9
//! of the daemon, random modem faults, then the promise judged from events.jsonl and the store
//! (tests/soak_run). The full run is `cargo bench --bench soak` (README records its figures).

#[path = "soak_run/mod.rs"]
mod soak_run;
mod support;

use std::time::Duration;

use soak_run::{run, SoakOptions};

#[test]
fn soak_short_form_keeps_the_promise() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = SoakOptions {
        messages: 1_000,
        crashes: 10,
        modems: 8,
        seed: std::env::var("SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20261129),
        deadline: Duration::from_secs(240),
    };
    let report = rt.block_on(run(tmp.path(), &opts));
    println!("{}", report.line());
    assert!(report.crashes >= 10, "{}", report.line());
    assert!(report.accepted >= 900, "{}", report.line());
    assert!(report.holds(), "{}", report.line());
}
