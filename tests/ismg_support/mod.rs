//! The in-process virtual ISMG for the CMPP tests (tests/gateway_link.rs, tests/sim_ismg.rs):
//! started on a free loopback port with a given SP id, secret and report delay, driven by
//! `sim ctl`-style controls, its events.jsonl read back by kind.
//!
//! What must always hold: the gateway listens on 127.0.0.1 only, with no control socket (the
//! tests drive it in-process), so parallel tests never meet each other.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::time::Duration;

use smsgate::sim::{Bank, Control, IsmgConfig, IsmgControl, IsmgStatus, SimConfig};

/// A bank with no modems and a virtual ISMG; `tune` adjusts the gateway's configuration.
pub async fn start_ismg(
    dir: &Path,
    sp_id: &str,
    secret: &[u8],
    report_delay: Duration,
    tune: impl FnOnce(&mut IsmgConfig),
) -> Bank {
    let mut cfg = SimConfig::new(0, dir);
    cfg.control_socket = false;
    let mut c = IsmgConfig::new("127.0.0.1:0".parse().unwrap(), sp_id, secret);
    c.report_delay = report_delay;
    tune(&mut c);
    cfg.cmpp = Some(c);
    Bank::start(cfg).await.unwrap()
}

/// Applies a control to the gateway and returns its status.
pub async fn ctl(bank: &Bank, c: IsmgControl) -> IsmgStatus {
    bank.control(Control::Cmpp(c))
        .await
        .unwrap()
        .gateway
        .unwrap()
}

/// The gateway's events of one kind ("cmpp_submit", "cmpp_login", ...), in order.
pub fn events(bank: &Bank, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(bank.events_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == kind)
        .collect()
}
