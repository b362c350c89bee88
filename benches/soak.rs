//! The soak, full form (issue 8): `cargo bench --bench soak` runs 10,000 messages with 100
//! kill -9 of the daemon and random modem faults against the virtual bank, then prints the
//! one-line verdict (tests/soak_run). Options by environment: SOAK_MESSAGES, SOAK_CRASHES,
//! SOAK_MODEMS, SOAK_SEED. Exits non-zero when the promise did not hold.

#[path = "../tests/soak_run/mod.rs"]
mod soak_run;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes --bench; nothing else is read from the command line.
    let opts = soak_run::SoakOptions {
        messages: env("SOAK_MESSAGES", 10_000) as usize,
        crashes: env("SOAK_CRASHES", 100) as usize,
        modems: env("SOAK_MODEMS", 16) as usize,
        seed: env("SOAK_SEED", 1),
        deadline: Duration::from_secs(env("SOAK_SECONDS", 1800)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = rt.block_on(soak_run::run(tmp.path(), &opts));
    println!("{}", report.line());
    if !report.holds() {
        std::process::exit(1);
    }
}
