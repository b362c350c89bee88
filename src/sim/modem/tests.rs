//! Tests of the virtual modem engine (moved out of modem.rs with no change).

use super::*;
use crate::sim::dialect::Dialect;
use proptest::prelude::*;

// vectors/pdu.json "gsm7-submit-relative-vp" (subnets.ru sms_pdu_format, AT+CMGS=23).
const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
// The same SUBMIT with TP-SRR (first octet 0x31): a status report is wanted.
const SUBMIT_SRR: &str = "0031000B916407281553F80000AA0AE8329BFD4697D9EC37";

fn engine(d: Dialect) -> Engine {
    Engine::new(
        d.profile(),
        Identity::generate(1, 0, d.profile().number_toa == 0x81),
        1,
        Duration::from_millis(800),
        Duration::from_secs(1),
    )
}

/// Everything the engine wrote, as text; timers and events returned separately (an
/// `Unplug` shows as the event `{"action":"unplug"}`).
fn split(actions: Vec<Action>) -> (String, Vec<Timer>, Vec<Value>) {
    let (mut w, mut t, mut e) = (String::new(), vec![], vec![]);
    for a in actions {
        match a {
            Action::Write(_, b) => w.push_str(&String::from_utf8_lossy(&b)),
            Action::Arm(_, x) => t.push(x),
            Action::Event(x) => e.push(x),
            Action::Unplug => e.push(json!({"action": "unplug"})),
        }
    }
    (w, t, e)
}

/// What went to each port, as text.
fn per_port(actions: &[Action]) -> [String; 2] {
    let mut w = [String::new(), String::new()];
    for a in actions {
        if let Action::Write(p, b) = a {
            w[*p].push_str(&String::from_utf8_lossy(b));
        }
    }
    w
}

fn say(e: &mut Engine, s: &str) -> String {
    split(e.feed(s.as_bytes())).0
}

#[test]
fn echo_until_ate0_and_cme_forms() {
    let mut e = engine(Dialect::Generic);
    assert_eq!(say(&mut e, "AT\r"), "AT\r\r\nOK\r\n");
    assert_eq!(say(&mut e, "ATE0\r"), "ATE0\r\r\nOK\r\n");
    assert_eq!(say(&mut e, "AT\r\n"), "\r\nOK\r\n");
    e.sim_present = false;
    assert_eq!(say(&mut e, "AT+CIMI\r"), "\r\nERROR\r\n");
    assert_eq!(say(&mut e, "AT+CMEE=1;+CIMI\r"), "\r\n+CME ERROR: 10\r\n");
    assert_eq!(
        say(&mut e, "AT+CMEE=2;+CIMI\r"),
        "\r\n+CME ERROR: SIM not inserted\r\n"
    );
}

#[test]
fn identity_commands() {
    let mut e = engine(Dialect::Quectel);
    say(&mut e, "ATE0\r");
    let imei = e.identity.imei.clone();
    assert_eq!(
        say(&mut e, "AT+CGSN\r"),
        format!("\r\n{imei}\r\n\r\nOK\r\n")
    );
    assert!(say(&mut e, "AT+QCCID\r").starts_with("\r\n+QCCID: 8986"));
    assert_eq!(say(&mut e, "AT+CCID\r"), "\r\nERROR\r\n");
    assert!(say(&mut e, "AT+CRSM=176,12258,0,0,10\r").starts_with("\r\n+CRSM: 144,0,\"9868"));
    assert!(say(&mut e, "AT+COPS?\r").contains("CHINA MOBILE"));
}

#[test]
fn garbage_before_at_is_skipped() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0\r");
    assert_eq!(
        say(&mut e, "\x00\u{7f}~~AT+CSQ\r"),
        "\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
    );
    // Input one byte at a time gives the same answer.
    let mut out = String::new();
    for b in "AT+CSQ\r".bytes() {
        out.push_str(&split(e.feed(&[b])).0);
    }
    assert_eq!(out, "\r\n+CSQ: 21,99\r\n\r\nOK\r\n");
}

#[test]
fn cmgs_good_bad_and_cancel() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0\r");
    // The command's arrival is an event of its own, before the prompt is written.
    let (w, _, ev) = split(e.feed(b"AT+CMGS=23\r"));
    assert_eq!(w, "\r\n> ");
    assert_eq!(ev, vec![json!({"event": "send_command", "length": 23})]);
    let (w, timers, _) = split(e.feed(format!("{SUBMIT}\x1a").as_bytes()));
    assert_eq!(w, "");
    assert_eq!(e.state(), "sending");
    // Input while the network works waits for the result.
    assert_eq!(say(&mut e, "AT\r"), "");
    let [t] = <[Timer; 1]>::try_from(timers).unwrap();
    let (w, timers, ev) = split(e.fire(t));
    assert_eq!(w, "\r\n+CMGS: 1\r\n\r\nOK\r\n\r\nOK\r\n");
    assert!(timers.is_empty());
    assert_eq!(ev[0]["event"], "cmgs");
    assert_eq!(ev[0]["mr"], 1);
    assert_eq!(ev[0]["pdu"], SUBMIT);
    assert_eq!(ev[0]["to"], "+46708251358");
    assert_eq!(ev[0]["text"], "hellohello");
    // Wrong length: +CMS ERROR: 304 numeric, then verbose with CMEE=2.
    say(&mut e, "AT+CMGS=22\r");
    assert_eq!(
        say(&mut e, &format!("{SUBMIT}\x1a")),
        "\r\n+CMS ERROR: 304\r\n"
    );
    say(&mut e, "AT+CMEE=2\r");
    say(&mut e, "AT+CMGS=7\r");
    assert_eq!(
        say(&mut e, "00110\x1a"),
        "\r\n+CMS ERROR: invalid PDU mode parameter\r\n"
    );
    // ESC cancels.
    say(&mut e, "AT+CMGS=23\r");
    assert_eq!(say(&mut e, "0011\x1b"), "\r\nOK\r\n");
    assert_eq!(e.counters.rejected_pdus, 2);
}

#[test]
fn message_references_increment_and_fail_rules_apply() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0\r");
    e.fail = Some(FailRule {
        cms: 38,
        mode: FailMode::Times(2),
    });
    let mut results = Vec::new();
    for _ in 0..4 {
        say(&mut e, "AT+CMGS=23\r");
        let (_, t, _) = split(e.feed(format!("{SUBMIT}\x1a").as_bytes()));
        results.push(split(e.fire(t.into_iter().next().unwrap())).0);
    }
    assert_eq!(results[0], "\r\n+CMS ERROR: 38\r\n");
    assert_eq!(results[1], "\r\n+CMS ERROR: 38\r\n");
    assert_eq!(results[2], "\r\n+CMGS: 3\r\n\r\nOK\r\n");
    assert_eq!(results[3], "\r\n+CMGS: 4\r\n\r\nOK\r\n");
}

#[test]
fn status_report_as_cds_and_cdsi() {
    for (ds, want) in [(1, "+CDS: 25\r\n"), (2, "+CDSI: \"SR\",1")] {
        let mut e = engine(Dialect::Generic);
        say(&mut e, &format!("ATE0;+CNMI=2,1,0,{ds},0\r"));
        say(&mut e, "AT+CMGS=23\r");
        let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
        let (_, t, _) = split(e.fire(t.into_iter().next().unwrap()));
        let Some(sr @ Timer::StatusReport { .. }) = t.into_iter().next() else {
            panic!("no report armed")
        };
        let (w, _, ev) = split(e.fire(sr));
        assert!(w.contains(want), "{w:?}");
        assert_eq!(ev[0]["event"], "status_report");
        assert_eq!(ev[0]["mr"], 1);
    }
}

/// Reports nobody can receive are kept in "SR" (whatever ds says) and read back in PDU
/// mode with +CPMS="SR", +CMGL=4, +CMGR and +CMGD; ds=1 with a listener stays +CDS.
#[test]
fn status_reports_nobody_hears_are_stored_in_sr() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0;+CNMI=2,1,0,1,0\r");
    let mut reports = Vec::new();
    for _ in 0..2 {
        say(&mut e, "AT+CMGS=23\r");
        let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
        let (_, t, _) = split(e.fire(t.into_iter().next().unwrap()));
        reports.push(t.into_iter().next().unwrap());
    }
    e.te_listening = false;
    let (w, _, ev) = split(e.fire(reports.remove(0)));
    assert_eq!(w, "");
    assert_eq!(ev[0]["delivery"], "stored");
    assert_eq!(ev[0]["memory"], "SR");
    assert_eq!(e.reports_stored(), (1, 20));
    let pdu = ev[0]["pdu"].as_str().unwrap().to_string();
    e.te_listening = true;
    let (w, _, ev) = split(e.fire(reports.remove(0)));
    assert!(w.starts_with("\r\n+CDS: 25\r\n"), "{w:?}");
    assert_eq!(ev[0]["delivery"], "cds");
    assert_eq!(e.reports_stored().0, 1);
    // Only <mem1> may be "SR".
    assert_eq!(
        say(&mut e, "AT+CPMS=\"SM\",\"SR\"\r"),
        "\r\n+CMS ERROR: 302\r\n"
    );
    assert_eq!(
        say(&mut e, "AT+CPMS=\"SR\"\r"),
        "\r\n+CPMS: 1,20,0,30,0,30\r\n\r\nOK\r\n"
    );
    let tpdu_len = (pdu.len() / 2) - 1 - usize::from_str_radix(&pdu[..2], 16).unwrap();
    assert_eq!(
        say(&mut e, "AT+CMGL=4\r"),
        format!("\r\n+CMGL: 1,0,,{tpdu_len}\r\n{pdu}\r\n\r\nOK\r\n")
    );
    assert_eq!(
        say(&mut e, "AT+CMGR=1\r"),
        format!("\r\n+CMGR: 1,,{tpdu_len}\r\n{pdu}\r\n\r\nOK\r\n")
    );
    assert_eq!(say(&mut e, "AT+CMGD=1\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut e, "AT+CMGL=4\r"), "\r\nOK\r\n");
    assert_eq!(e.reports_stored().0, 0);
}

/// `late`: the part reaches the network at the usual time, the answer comes later, and a
/// command typed meanwhile is answered after it, in order.
#[test]
fn late_answer_then_queued_command() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0\r");
    e.late_next = Some(Duration::from_secs(3));
    say(&mut e, "AT+CMGS=23\r");
    let (_, t, _) = split(e.feed(format!("{SUBMIT}\x1a").as_bytes()));
    let (w, t, ev) = split(e.fire(t.into_iter().next().unwrap()));
    assert_eq!(w, "");
    assert_eq!(ev[0]["event"], "cmgs");
    assert_eq!(ev[1]["kind"], "late_answer");
    assert_eq!(e.counters.submitted, 1);
    assert_eq!(say(&mut e, "\x1bAT+CSQ\r"), "");
    let [late @ Timer::Answer { .. }] = <[Timer; 1]>::try_from(t).unwrap() else {
        panic!("no answer armed")
    };
    assert_eq!(
        split(e.fire(late)).0,
        "\r\n+CMGS: 1\r\n\r\nOK\r\n\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
    );
    assert!(e.late_next.is_none());
    assert_eq!(e.state(), "idle");
}

/// `unplug --after-submit`: the part is logged as sent, its report still comes, and the
/// engine asks to vanish instead of writing +CMGS.
#[test]
fn unplug_after_submit_reaches_the_network_first() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0\r");
    e.unplug_after_submit = true;
    say(&mut e, "AT+CMGS=23\r");
    let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
    let acts = e.fire(t.into_iter().next().unwrap());
    assert_eq!(acts.last(), Some(&Action::Unplug));
    let (w, t, ev) = split(acts);
    assert_eq!(w, "");
    assert_eq!(ev[0]["event"], "cmgs");
    assert!(matches!(t[..], [Timer::StatusReport { .. }]));
    assert!(!e.unplug_after_submit);
    assert_eq!(e.counters.submitted, 1);
}

/// The text-mode flow has the same two faults: `late` holds back the OK after the text,
/// `unplug_after_submit` fires once the network took it, before ^HCMGSS is written.
#[test]
fn phs_text_mode_late_and_unplug_after_submit() {
    let mut e = engine(Dialect::Phs);
    say(&mut e, "ATE0\r");
    say(&mut e, "AT^HSMSSS=0,0,6,0\r");
    say(&mut e, "AT+CMGF=1\r");
    e.late_next = Some(Duration::from_secs(2));
    e.unplug_after_submit = true;
    say(&mut e, "AT^HCMGS=\"075512345678\"\r");
    let (w, t, _) = split(e.feed(&[0x4F, 0x60, 0x00, 0x1A]));
    assert_eq!(w, "");
    assert_eq!(say(&mut e, "AT+CSQ\r"), "");
    let (mut answer, mut done) = (None, None);
    for t in t {
        match t {
            Timer::Answer { .. } => answer = Some(t),
            Timer::TextDone { .. } => done = Some(t),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        split(e.fire(answer.unwrap())).0,
        "\r\nOK\r\n\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
    );
    let acts = e.fire(done.unwrap());
    assert_eq!(acts.last(), Some(&Action::Unplug));
    let (w, _, ev) = split(acts);
    assert_eq!(w, "");
    assert_eq!(ev[0]["event"], "hcmgs");
    assert_eq!(e.counters.submitted, 1);
}

#[test]
fn power_on_restores_defaults_and_boot_burst() {
    let mut e = engine(Dialect::Quectel);
    say(
        &mut e,
        "ATE0;+CMEE=2;+CMGF=0;+CNMI=2,2,0,1,0;+CPMS=\"ME\",\"ME\",\"ME\"\r",
    );
    e.power_on();
    let (w, _, _) = split(e.boot_burst());
    assert_eq!(
        w,
        "\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n"
    );
    assert_eq!(
        say(&mut e, "AT+CMGF?\r"),
        "AT+CMGF?\r\r\n+CMGF: 1\r\n\r\nOK\r\n"
    );
    say(&mut e, "ATE0\r");
    assert_eq!(
        say(&mut e, "AT+CNMI?\r"),
        "\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
    );
    assert_eq!(say(&mut e, "AT+CMEE?\r"), "\r\n+CMEE: 0\r\n\r\nOK\r\n");
    assert!(say(&mut e, "AT+CPMS?\r").starts_with("\r\n+CPMS: \"SM\""));
    // PDU-mode send is refused until the driver sets +CMGF=0 again.
    assert_eq!(say(&mut e, "AT+CMGS=23\r"), "\r\n+CMS ERROR: 302\r\n");
    let mut g = engine(Dialect::Generic);
    g.sim_present = false;
    g.power_on();
    assert_eq!(
        split(g.boot_burst()).0,
        "\r\nRDY\r\n\r\n+CPIN: NOT READY\r\n"
    );
}

/// Two AT ports of one module: own echo and prompt per port, shared SIM and storage,
/// unsolicited lines on the primary only, each answer on the port that asked.
#[test]
fn two_ports_share_the_modem_not_the_line() {
    let mut e = engine(Dialect::Quectel);
    assert_eq!(e.add_port(), 1);
    assert_eq!(e.ports(), 2);
    let w = per_port(&e.feed_port(0, b"ATE0;+CNMI=2,1,0,0,0\r"));
    assert_eq!(w[0], "ATE0;+CNMI=2,1,0,0,0\r\r\nOK\r\n");
    // Port 1 still echoes; its +QCCID is the same SIM.
    let w = per_port(&e.feed_port(1, b"AT+QCCID\r"));
    assert_eq!(w[0], "");
    assert!(w[1].starts_with("AT+QCCID\r\r\n+QCCID: 8986"), "{w:?}");
    // Port 0 at the prompt does not stop port 1 answering.
    assert_eq!(per_port(&e.feed_port(0, b"AT+CMGS=23\r"))[0], "\r\n> ");
    assert_eq!(per_port(&e.feed_port(1, b"ATE0\r"))[1], "ATE0\r\r\nOK\r\n");
    // An inbound SMS arrives while port 0 is at the prompt: its +CMTI waits there.
    let acts = e.inject("+8613912345678", "hi");
    assert_eq!(per_port(&acts), ["".to_string(), "".to_string()]);
    let w = per_port(&e.feed_port(0, b"\x1b"));
    assert_eq!(w[0], "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
    // Port 1 reads the message port 0 was told about: one storage.
    assert!(per_port(&e.feed_port(1, b"AT+CMGR=1\r"))[1].starts_with("\r\n+CMGR: 0,,"));
    // A submit from port 1 is answered on port 1.
    assert_eq!(per_port(&e.feed_port(1, b"AT+CMGS=23\r"))[1], "\r\n> ");
    let acts = e.feed_port(1, format!("{SUBMIT}\x1a").as_bytes());
    let (_, t, _) = split(acts);
    let w = per_port(&e.fire(t.into_iter().next().unwrap()));
    assert_eq!(w[0], "");
    assert!(w[1].starts_with("\r\n+CMGS: "), "{w:?}");
    // An unknown port index is taken as the primary, never a panic.
    assert!(per_port(&e.feed_port(7, b"AT\r"))[0].ends_with("OK\r\n"));
}

#[test]
fn inbound_cmti_then_cmgr_cmgd_and_cmt() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0;+CNMI=2,1,0,0,0\r");
    let (w, _, ev) = split(e.inject("+8613912345678", "TD"));
    assert_eq!(w, "\r\n+CMTI: \"SM\",1\r\n");
    assert_eq!(ev[0]["index"], 1);
    assert!(say(&mut e, "AT+CPMS?\r").contains("\"SM\",1,30"));
    let r = say(&mut e, "AT+CMGR=1\r");
    assert!(r.starts_with("\r\n+CMGR: 0,,"), "{r:?}");
    assert!(say(&mut e, "AT+CMGL=4\r").starts_with("\r\n+CMGL: 1,1,,"));
    assert_eq!(say(&mut e, "AT+CMGD=1\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut e, "AT+CMGL=4\r"), "\r\nOK\r\n");
    e.memory_full = true;
    let (w, _, ev) = split(e.inject("+8613912345678", "TD"));
    assert_eq!(w, "");
    assert_eq!(ev[0]["delivery"], "rejected-memory-full");
    say(&mut e, "AT+CMGW=23\r");
    assert_eq!(
        say(&mut e, &format!("{SUBMIT}\x1a")),
        "\r\n+CMS ERROR: 322\r\n"
    );
    say(&mut e, "AT+CNMI=2,2,0,0,0\r");
    assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
    say(&mut e, "AT+CSMS=1\r");
    let long: String = std::iter::repeat_n("退订", 40).collect();
    let (w, _, ev) = split(e.inject("+8613912345678", &long));
    assert_eq!(ev.len(), 2);
    assert_eq!(w.matches("+CMT: ,").count(), 2);
    // Phase 2+: one +CNMA per routed part, a third is not expected.
    assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\nOK\r\n");
    assert_eq!(say(&mut e, "AT+CNMA\r"), "\r\n+CMS ERROR: 340\r\n");
}

#[test]
fn urcs_wait_for_the_prompt() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0;+CNMI=2,1,0,0,0\r");
    say(&mut e, "AT+CMGS=23\r");
    let (w, _, _) = split(e.inject("+8613912345678", "hi"));
    assert_eq!(w, "");
    let w = say(&mut e, "\x1b");
    assert_eq!(w, "\r\nOK\r\n\r\n+CMTI: \"SM\",1\r\n");
}

#[test]
fn dialect_quirks() {
    let mut e = engine(Dialect::Phs);
    assert_eq!(say(&mut e, "AT\r"), "AT\r\r\nERROR\r\n");
    assert_eq!(say(&mut e, "ATE0;+CMEE=1\r"), "ATE0;+CMEE=1\r\r\nERROR\r\n");
    say(&mut e, "ATE0\r");
    // No PDU-mode send at all on a text-mode module.
    assert_eq!(say(&mut e, "AT+CMGS=23\r"), "\r\n+CMS ERROR: 303\r\n");
    assert!(say(&mut e, "AT+CNUM\r").contains(",129"));
    let mut g = engine(Dialect::Generic);
    assert!(say(&mut g, "AT^HCMGS=\"075512345678\"\r").ends_with("ERROR\r\n"));
    assert!(say(&mut g, "AT^HSMSSS=0,0,6,0\r").ends_with("ERROR\r\n"));

    let mut w = engine(Dialect::Wavecom);
    assert_eq!(say(&mut w, "ATE1\r"), "\r\nOK\r\n");
    let mut z = engine(Dialect::Zte);
    assert!(say(&mut z, "AT+ZCDRUN=8\r").ends_with(":1\r\n\r\nOK\r\n"));
    assert!(say(&mut engine(Dialect::Generic), "AT+ZCDRUN=8\r").ends_with("ERROR\r\n"));
    let mut h = engine(Dialect::Huawei);
    assert!(say(&mut h, "AT^ICCID?\r").contains("^ICCID: 8986"));
    assert!(split(h.chatter()).0.starts_with("\r\n^"));
}

/// The MC323-style text flow as public drivers drive it (ModemManager's Huawei CDMA
/// plugin, the Quick.Sms MC323 driver): ^HSMSSS=0,0,6,0, +CMGF=1, ^HCMGS="<number>",
/// "> ", UCS2 big-endian + 00 1A, OK, then ^HCMGSS:<mr> (or ^HCMGSF:<cause>).
#[test]
fn phs_text_mode_send() {
    let mut e = engine(Dialect::Phs);
    say(&mut e, "ATE0\r");
    // ^HCMGS belongs to text mode.
    assert_eq!(
        say(&mut e, "AT^HCMGS=\"075512345678\"\r"),
        "\r\n+CMS ERROR: 302\r\n"
    );
    assert_eq!(say(&mut e, "AT^HSMSSS=0,0,6,0\r"), "\r\nOK\r\n");
    assert_eq!(
        say(&mut e, "AT^HSMSSS?\r"),
        "\r\n^HSMSSS: 0,0,6,0\r\n\r\nOK\r\n"
    );
    assert_eq!(
        say(&mut e, "AT^HSMSSS=0,0,9,0\r"),
        "\r\n+CMS ERROR: 303\r\n"
    );
    assert_eq!(say(&mut e, "AT+CMGF=1\r"), "\r\nOK\r\n");
    // International form is not taken by a PHS module.
    assert_eq!(
        say(&mut e, "AT^HCMGS=\"+8675512345678\"\r"),
        "\r\n+CMS ERROR: 305\r\n"
    );
    assert_eq!(say(&mut e, "AT^HCMGS=\"075512345678\"\r"), "\r\n> ");
    // "业务" = U+4E1A U+52A1: the 0x1A inside 业 must not end the text.
    let mut body = vec![0x4E, 0x1A, 0x52, 0xA1];
    let (w, t, _) = split(e.feed(&body));
    assert_eq!((w.as_str(), t.len()), ("", 0));
    body = vec![0x00, 0x1A];
    let (w, t, _) = split(e.feed(&body));
    assert_eq!(w, "\r\nOK\r\n");
    let [t] = <[Timer; 1]>::try_from(t).unwrap();
    let (w, _, ev) = split(e.fire(t));
    assert_eq!(w, "\r\n^HCMGSS:1\r\n");
    assert_eq!(ev[0]["event"], "hcmgs");
    assert_eq!(ev[0]["to"], "075512345678");
    assert_eq!(ev[0]["text"], "业务");
    assert_eq!(ev[0]["mr"], 1);
    // Injected failure arrives as ^HCMGSF with the cause.
    e.fail = Some(FailRule {
        cms: 107,
        mode: FailMode::Once,
    });
    say(&mut e, "AT^HCMGS=\"075512345678\"\r");
    let (w, t, _) = split(e.feed(&[0x4F, 0x60, 0x00, 0x1A]));
    assert_eq!(w, "\r\nOK\r\n");
    assert_eq!(
        split(e.fire(t.into_iter().next().unwrap())).0,
        "\r\n^HCMGSF:107\r\n"
    );
    // More than 70 UCS2 characters is refused; 00 1B cancels.
    say(&mut e, "AT^HCMGS=\"075512345678\"\r");
    let mut long: Vec<u8> = [0x4F, 0x60].repeat(71);
    long.extend([0x00, 0x1A]);
    assert_eq!(split(e.feed(&long)).0, "\r\n+CMS ERROR: 305\r\n");
    say(&mut e, "AT^HCMGS=\"075512345678\"\r");
    assert_eq!(split(e.feed(&[0x4F, 0x60, 0x00, 0x1B])).0, "\r\nOK\r\n");
    assert_eq!(e.counters.submitted, 1);
    assert_eq!(e.counters.failed, 1);
}

#[test]
fn phs_text_mode_inbound_is_hcmt() {
    let mut e = engine(Dialect::Phs);
    say(&mut e, "ATE0\r");
    say(&mut e, "AT+CMGF=1\r");
    say(&mut e, "AT+CNMI=2,2,0,0,0\r");
    let acts = e.inject("075587654321", "退订");
    let bytes: Vec<u8> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Write(_, b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let head = String::from_utf8_lossy(&bytes[..bytes.len() - 8]).to_string();
    assert!(head.starts_with("\r\n^HCMT:075587654321,20"), "{head:?}");
    assert!(head.ends_with(",0,6,4,0,0,0,0\r\n"), "{head:?}");
    // 退 U+9000, 订 U+8BA2, then 00 1A and CR LF.
    assert_eq!(
        &bytes[bytes.len() - 8..],
        &[0x90, 0x00, 0x8B, 0xA2, 0x00, 0x1A, b'\r', b'\n']
    );
    // In PDU mode the same module uses the 27.005 +CMT.
    say(&mut e, "AT+CMGF=0\r");
    assert!(split(e.inject("075587654321", "TD"))
        .0
        .starts_with("\r\n+CMT: ,"));
    // 75 characters arrive as two pieces (70 + 5): no concatenation header in CDMA text.
    say(&mut e, "AT+CMGF=1\r");
    let (w, _, ev) = split(e.inject("075587654321", &"退".repeat(75)));
    assert_eq!(w.matches("^HCMT:").count(), 2);
    assert_eq!(ev[1]["text"], "退".repeat(5));
}

/// 27.005 §3.4.2/§3.4.3: in text mode a read or a listing answers with the text-mode header
/// and the text, on every dialect (it answered with a PDU line before, which no modem does);
/// PDU mode keeps the PDU form.
#[test]
fn text_mode_reads_and_listings_are_text() {
    for d in Dialect::ALL {
        let mut e = engine(d);
        say(&mut e, "ATE0\r");
        say(&mut e, "AT+CNMI=2,1,0,0,0\r");
        say(&mut e, "AT+CMGF=1\r");
        e.inject("+8613912345678", "TD");
        let r = say(&mut e, "AT+CMGR=1\r");
        assert!(
            r.starts_with("\r\n+CMGR: \"REC UNREAD\",\"+8613912345678\",,\""),
            "{d}: {r:?}"
        );
        assert!(r.ends_with("\"\r\nTD\r\n\r\nOK\r\n"), "{d}: {r:?}");
        e.inject("+8613912345678", "退订");
        let l = say(&mut e, "AT+CMGL=\"ALL\"\r");
        assert!(
            l.starts_with("\r\n+CMGL: 1,\"REC READ\",\"+8613912345678\",,\""),
            "{d}: {l:?}"
        );
        // UCS2 text shows as its octets in hex (退 U+9000, 订 U+8BA2).
        assert!(
            l.contains("\r\nTD\r\n\r\n+CMGL: 2,\"REC UNREAD\","),
            "{d}: {l:?}"
        );
        assert!(l.ends_with("\r\n90008BA2\r\n\r\nOK\r\n"), "{d}: {l:?}");
        assert!(!l.contains(",,2"), "{d}: no PDU-mode header: {l:?}");
        let u = say(&mut e, "AT+CMGL=\"REC UNREAD\"\r");
        assert!(u.starts_with("\r\nOK"), "{d}: listed once as unread: {u:?}");
        say(&mut e, "AT+CMGF=0\r");
        assert!(say(&mut e, "AT+CMGR=1\r").starts_with("\r\n+CMGR: 1,,"));
    }
}

/// The phs dialect reads a stored message with ^HCMGR (Huawei CDMA manuals): header with
/// the caller, the local time, format and length, then the raw text and its end marker.
#[test]
fn phs_hcmgr_reads_stored_text() {
    let mut e = engine(Dialect::Phs);
    say(&mut e, "ATE0\r");
    say(&mut e, "AT+CNMI=2,1,0,0,0\r");
    assert!(
        say(&mut e, "AT^HCMGR=1\r").contains("+CMS ERROR"),
        "PDU mode"
    );
    say(&mut e, "AT+CMGF=1\r");
    let (w, _, _) = split(e.inject("075587654321", "退订"));
    assert!(w.contains("+CMTI: "), "{w:?}");
    let acts = e.feed(b"AT^HCMGR=1\r");
    let bytes: Vec<u8> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Write(_, b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let head = String::from_utf8_lossy(&bytes).to_string();
    assert!(head.starts_with("\r\n^HCMGR:075587654321,20"), "{head:?}");
    assert!(head.contains(",0,6,4,0,0,0,0\r\n"), "{head:?}");
    let tail = [0x90, 0x00, 0x8B, 0xA2, 0x00, 0x1A, b'\r', b'\n'];
    assert!(
        bytes.ends_with(&[&tail[..], b"\r\nOK\r\n"].concat()),
        "{bytes:?}"
    );
    // Read once: the stat field says so the second time; ASCII is format 1 ending in 1A.
    assert!(say(&mut e, "AT^HCMGR=1\r").contains(",0,6,4,0,0,0,1\r\n"));
    e.inject("075587654321", "TD");
    assert!(say(&mut e, "AT^HCMGR=2\r").contains(",0,1,2,0,0,0,0\r\nTD\u{1a}\r\n"));
    assert!(
        say(&mut e, "AT^HCMGR=3\r").ends_with("\r\nOK\r\n"),
        "empty slot"
    );
    assert!(say(&mut e, "AT^HCMGR=999\r").contains("+CMS ERROR"));
    // Other dialects do not know it.
    let mut g = engine(Dialect::Huawei);
    say(&mut g, "AT+CMGF=1\r");
    assert!(say(&mut g, "AT^HCMGR=1\r").contains("ERROR"));
}

#[test]
fn smsc_drop_quirk_and_report_status() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0;+CNMI=2,1,0,1,0\r");
    e.smsc_drop = true;
    // SMSC 07 91 1326040000F0 (+31624000000) in front of the SUBMIT: no reply at all.
    say(&mut e, "AT+CMGS=23\r");
    let (w, t, ev) = split(e.feed(format!("07911326040000F0{}\x1a", &SUBMIT[2..]).as_bytes()));
    assert_eq!((w.as_str(), t.len()), ("", 0));
    assert_eq!(ev[0]["kind"], "smsc_drop");
    assert_eq!(e.state(), "idle");
    // Without the SMSC ("00" = use +CSCA) it goes through.
    say(&mut e, "AT+CMGS=23\r");
    let (_, t, _) = split(e.feed(format!("{SUBMIT_SRR}\x1a").as_bytes()));
    e.report_status = 0x46;
    let (w, t, _) = split(e.fire(t.into_iter().next().unwrap()));
    assert!(w.starts_with("\r\n+CMGS: "), "{w:?}");
    let (w, _, ev) = split(e.fire(t.into_iter().next().unwrap()));
    assert_eq!(ev[0]["status"], 0x46);
    // The TP-Status is the octet after the two 7-octet timestamps at the PDU's end.
    let pdu = w.lines().nth(2).unwrap().to_string();
    assert!(pdu.ends_with("46"), "{pdu}");
}

#[test]
fn network_and_sim_loss() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0;+CREG=1;+CMEE=1\r");
    assert_eq!(split(e.set_network(false)).0, "\r\n+CREG: 2\r\n");
    assert_eq!(say(&mut e, "AT+CREG?\r"), "\r\n+CREG: 1,2\r\n\r\nOK\r\n");
    say(&mut e, "AT+CMGS=23\r");
    assert_eq!(
        say(&mut e, &format!("{SUBMIT}\x1a")),
        "\r\n+CMS ERROR: 331\r\n"
    );
    assert_eq!(split(e.set_network(true)).0, "\r\n+CREG: 1\r\n");
    assert_eq!(
        split(e.set_sim(false)).0,
        "\r\n+CPIN: NOT READY\r\n\r\n+CREG: 0\r\n"
    );
    assert_eq!(say(&mut e, "AT+CPIN?\r"), "\r\n+CME ERROR: 10\r\n");
}

/// gammu's GSM_GetNetworkInfo asks AT+CGATT? after +CREG/+CGREG (issue 14: gammu-smsd's network
/// check logged an "UNKNOWN response" on every status round); 27.007 10.1.9.
#[test]
fn packet_attach_follows_registration() {
    let mut e = engine(Dialect::Generic);
    say(&mut e, "ATE0\r");
    assert_eq!(say(&mut e, "AT+CGATT?\r"), "\r\n+CGATT: 1\r\n\r\nOK\r\n");
    assert_eq!(
        say(&mut e, "AT+CGATT=?\r"),
        "\r\n+CGATT: (0,1)\r\n\r\nOK\r\n"
    );
    e.set_network(false);
    assert_eq!(say(&mut e, "AT+CGATT?\r"), "\r\n+CGATT: 0\r\n\r\nOK\r\n");
}

#[test]
fn command_line_parser() {
    let c =
        parse_commands("E0V1+CMEE=1;+CNMI=2,1,0,2,0;+CPMS?;+CSCA=\"+86;1\",145;^ICCID?").unwrap();
    let names: Vec<_> = c.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["E", "V", "+CMEE", "+CNMI", "+CPMS", "+CSCA", "^ICCID"]
    );
    assert_eq!(c[5].kind, Kind::Set("\"+86;1\",145".into()));
    assert_eq!(
        parse_commands("S0=0").unwrap()[0].kind,
        Kind::Set("0".into())
    );
    assert!(parse_commands("@@").is_none());
}

proptest! {
    #[test]
    fn engine_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10)) {
        let mut e = engine(Dialect::Generic);
        for c in chunks {
            for a in e.feed(&c) {
                if let Action::Arm(_, t) = a {
                    let _ = e.fire(t);
                }
            }
        }
    }

    #[test]
    fn text_prompt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut e = engine(Dialect::Phs);
        let _ = e.feed(b"AT+CMGF=1\r");
        let _ = e.feed(b"AT^HSMSSS=0,0,6,0\r");
        let _ = e.feed(b"AT^HCMGS=\"075512345678\"\r");
        for a in e.feed(&bytes) {
            if let Action::Arm(_, t) = a {
                let _ = e.fire(t);
            }
        }
    }

    #[test]
    fn engine_never_panics_on_at_like_lines(line in "(AT|at)[+^A-Z0-9=?,;\"&]{0,30}\r") {
        let mut e = engine(Dialect::Huawei);
        let _ = e.feed(line.as_bytes());
    }
}
