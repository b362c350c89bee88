//! End-to-end proof of the daemon: the real `smsgate` binary as `smsgate daemon` (its own
//! process, TOML config, SQLite file in WAL mode, API on a real Unix socket) driving the virtual
//! modem bank `smsgate sim` (another process, real pseudo-terminals), with faults injected through
//! `smsgate sim ctl`. What the network received is read from the bank's events.jsonl, never from
//! the daemon's own account of it.
//!
//! What these tests prove (README "Guarantees and how they are tested"): a batch spreads over
//! every modem and each part is submitted exactly once, a concatenated message's parts on one
//! modem in order; an unplugged modem's work completes elsewhere and the modem comes back as the
//! same SIM; kill -9 never makes the daemon send a part twice and leaves at most one `unknown`
//! part per modem, which `smsgate retry` sends again; SIGTERM drains; +CMS errors are retried
//! or fail the one message as their class says; systemd hears READY=1 and STATUS=; a long
//! Chinese reply is reassembled; `smsgate demo` works.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use smsgate::api::types::MessageState;
use support::*;

fn mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// 1. A batch of 200 messages (a third of them concatenated) over four modems.
#[test]
fn batch_spreads_over_all_modems_and_sends_each_part_once() {
    mt().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let sim = Sim::start(&tmp.path().join("bank"), 4, &[]);
        let daemon = Daemon::start(tmp.path(), &sim);
        daemon.wait_ready(4).await;
        let client = daemon.client();

        let ids = send_batch(&client, 0, 200).await;
        assert_eq!(ids.len(), 200);
        let done = wait_messages(
            &client,
            &ids,
            Duration::from_secs(60),
            "all delivered",
            |m| is_final(m.state),
        )
        .await;
        for m in &done {
            assert_eq!(m.state, MessageState::Delivered, "{m:?}");
            // The parts of one message went out on one SIM.
            let sims: BTreeSet<_> = m.parts.iter().map(|p| p.sim.clone()).collect();
            assert_eq!(sims.len(), 1, "message {} used several SIMs: {m:?}", m.id.0);
        }
        let total_parts: usize = done.iter().map(|m| m.parts.len()).sum();
        assert!(total_parts > 200, "some messages must be concatenated");

        let submits = sim.submits();
        // Exactly one submit per part: none lost, none twice.
        assert_eq!(submits.len(), total_parts);
        assert!(
            duplicates(&submits).is_empty(),
            "{:?}",
            duplicates(&submits)
        );
        let pdus: BTreeSet<&str> = submits.iter().map(|s| s.pdu.as_str()).collect();
        assert_eq!(pdus.len(), submits.len(), "a PDU was submitted twice");
        // Every modem was used.
        let used: BTreeSet<usize> = submits.iter().map(|s| s.modem).collect();
        assert_eq!(used, (0..4).collect::<BTreeSet<_>>());
        // A concatenated message: all parts on one modem, in order 1..=total.
        let mut by_msg: BTreeMap<(String, u64), Vec<&Submit>> = BTreeMap::new();
        for s in &submits {
            if let Some((r, _, _)) = s.concat {
                by_msg.entry((s.to.clone(), r)).or_default().push(s);
            }
        }
        assert!(!by_msg.is_empty());
        for (key, parts) in &by_msg {
            let modems: BTreeSet<usize> = parts.iter().map(|s| s.modem).collect();
            assert_eq!(modems.len(), 1, "{key:?} split over modems {modems:?}");
            let seqs: Vec<u64> = parts.iter().map(|s| s.concat.unwrap().2).collect();
            let total = parts[0].concat.unwrap().1;
            assert_eq!(
                seqs,
                (1..=total).collect::<Vec<_>>(),
                "{key:?} out of order"
            );
        }
        // Each recipient's submits match the status the API shows (SIM of the modem used).
        let iccids = sim.iccids();
        let by_to: BTreeMap<&str, usize> =
            submits.iter().map(|s| (s.to.as_str(), s.modem)).collect();
        for m in &done {
            let modem = by_to
                .get(m.to.as_str())
                .unwrap_or_else(|| panic!("no submit to {}", m.to));
            let iccid = m.parts[0].sim.clone().unwrap();
            assert_eq!(iccids.get(&iccid), Some(modem), "{m:?}");
        }
    });
}
