//! Golden tests for `smsgate pdu` with the real binary: exact output for encode/decode/count,
//! JSON shapes, and exit status 2 with one stderr line on bad input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn smsgate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn smsgate");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = smsgate(args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

// Source: cnblogs daniu233 2013/04/22 (AT+CMGS=21).
const UCS2_SUBMIT_CHINA: &str = "0891683108100005F011000D91683119109991F20008C20660A8597DFF01";
// Source: pmarti/python-messaging messaging/test/test_sms.py.
const GSM7_DELIVER: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";
// Source: pmarti/python-messaging messaging/test/test_sms.py.
const STATUS_REPORT: &str = "0791538375000075061805810531F1019082416500400190824165004000";
// Source: ModemManager src/tests/test-sms-part-3gpp.c test_pdu_multipart.
const CONCAT_1: &str = "07912160130320F5440B916171056429F5000021405291650569A00500034C0201A9E8F41C949E83C2207B599E07B1DFEE33885E9ED341E4F23C7D7697C920FA1B54C697E5E3F4BC0C6AD7D9F434081E96D341E3303C2C4EB3D3F4BC0B94A483E6E8779D4D06CDD1EF3BA80E0785E7A0B7BB0C6A97E7F3F0B9CC02B9DF7450780EA2DFDF2C50780EA2A3CBA0BA9B5C96B3F369F71954768FDFE4B4FB0C9297E1F2F2BCECA6CF41";
const CONCAT_2: &str = "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D44479741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10";

#[test]
fn encode_plain_matches_the_vector() {
    let out = ok(&[
        "pdu",
        "encode",
        "--to",
        "+8613910199192",
        "--text",
        "您好！",
        "--smsc",
        "+8613800100500",
        "--validity",
        "28d",
    ]);
    assert_eq!(out, format!("21 {UCS2_SUBMIT_CHINA}\n"));
}

#[test]
fn encode_json_long_text() {
    let text = "a".repeat(200);
    let v = json(&[
        "pdu",
        "encode",
        "--to",
        "13912345678",
        "--text",
        &text,
        "--ref",
        "5",
        "--json",
        "--status-report",
        "--class",
        "1",
    ]);
    let parts = v.as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["part"], 1);
    assert_eq!(parts[1]["parts"], 2);
    assert_eq!(parts[0]["encoding"], "gsm7");
    assert_eq!(parts[0]["length"], 153);
    // SMSC 00, first octet 0x61 (SUBMIT + SRR + UDHI), MR 0, national number 0x81, DCS 0x11.
    let pdu = parts[0]["pdu"].as_str().unwrap();
    assert!(
        pdu.starts_with("0061000B813119325476F80011A0050003050201"),
        "{pdu}"
    );
    let parts16 = json(&[
        "pdu",
        "encode",
        "--to",
        "+8613912345678",
        "--text",
        &"中".repeat(70),
        "--json",
        "--ref16",
        "--ref",
        "4660",
    ]);
    assert_eq!(parts16.as_array().unwrap().len(), 1);
    let two = json(&[
        "pdu",
        "encode",
        "--to",
        "+8613912345678",
        "--text",
        &"中".repeat(71),
        "--json",
        "--ref16",
        "--ref",
        "4660",
    ]);
    assert_eq!(two[1]["encoding"], "ucs2");
    assert!(two[0]["pdu"].as_str().unwrap().contains("060804123402"));
}

#[test]
fn encode_absolute_validity() {
    let v = json(&[
        "pdu",
        "encode",
        "--to",
        "+8613912345678",
        "--text",
        "hi",
        "--validity",
        "2026-12-01T08:00:00+08:00",
        "--json",
    ]);
    let pdu = v[0]["pdu"].as_str().unwrap();
    // VPF 11 (0x18) in the first octet, then the absolute time 26-12-01 08:00:00 +08:00.
    assert!(pdu.starts_with("0019"), "{pdu}");
    assert!(pdu.contains("62211080000023"), "{pdu}");
    let d = json(&["pdu", "decode", "--json", pdu]);
    assert_eq!(d["validity"], "absolute 2026-12-01T08:00:00+08:00");
}

#[test]
fn decode_plain_block() {
    let out = ok(&["pdu", "decode", GSM7_DELIVER]);
    assert_eq!(
        out,
        "PDU 1: SMS-DELIVER\n\
         \x20 SMSC:        +31624000000 (type 0x91)\n\
         \x20 Sender:      +31641600986 (type 0x91)\n\
         \x20 Timestamp:   2002-08-26T19:37:41+00:00\n\
         \x20 Encoding:    gsm7 (DCS 0x00, no class)\n\
         \x20 Text:        How are you?\n\
         \x20 TPDU length: 30\n"
    );
}

#[test]
fn decode_json_fields() {
    let v = json(&["pdu", "decode", "--json", STATUS_REPORT]);
    assert_eq!(v["type"], "status-report");
    assert_eq!(v["message_reference"], 24);
    assert_eq!(v["recipient"], "50131");
    assert_eq!(v["timestamp"], "2010-09-28T14:56:00+01:00");
    assert_eq!(v["discharge_time"], "2010-09-28T14:56:00+01:00");
    assert_eq!(v["status"], 0);
    assert!(v["status_text"].as_str().unwrap().starts_with("delivered"));

    let v = json(&["pdu", "decode", "--json", UCS2_SUBMIT_CHINA, GSM7_DELIVER]);
    let a = v.as_array().unwrap();
    assert_eq!(a[0]["type"], "submit");
    assert_eq!(a[0]["smsc"], "+8613800100500");
    assert_eq!(a[0]["recipient"], "+8613910199192");
    assert_eq!(a[0]["encoding"], "ucs2");
    assert_eq!(a[0]["text"], "您好！");
    assert_eq!(a[0]["validity"], "relative 0xC2 = 28 days");
    assert_eq!(a[0]["status_report_requested"], false);
    assert_eq!(a[0]["udh"], serde_json::Value::Null);
    assert_eq!(a[1]["type"], "deliver");
    assert_eq!(a[1]["sender"], "+31641600986");
    assert_eq!(a[1]["text"], "How are you?");
}

#[test]
fn decode_stdin_and_join() {
    let out = smsgate(
        &["pdu", "decode", "--json", "--join"],
        Some(&format!("{CONCAT_2}\n\n{CONCAT_1}\n")),
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["complete"], true);
    assert_eq!(v["parts"], 2);
    assert_eq!(v["udh"]["concat"]["ref"], 76);
    assert!(v["text"]
        .as_str()
        .unwrap()
        .ends_with("represents that the parts are related to one another. "));

    let v = json(&["pdu", "decode", "--json", "--join", CONCAT_2]);
    assert_eq!(v["complete"], false);
    assert_eq!(v["missing"], serde_json::json!([1]));
    let plain = ok(&["pdu", "decode", "--join", CONCAT_2]);
    assert!(
        plain.contains("Parts:       1 of 2 received, missing [1]"),
        "{plain}"
    );
}

#[test]
fn count_outputs() {
    assert_eq!(
        ok(&["pdu", "count", "--text", "hello {}"]),
        "gsm7: 1 part, 10 septets\n"
    );
    let v = json(&["pdu", "count", "--json", "--text", &"中".repeat(71)]);
    assert_eq!(
        v,
        serde_json::json!({"encoding": "ucs2", "parts": 2, "units": 71})
    );
}

fn bad(args: &[&str], stdin: Option<&str>) -> String {
    let out = smsgate(args, stdin);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let e = bad(&["pdu", "decode", "0791ZZ"], None);
    assert_eq!(e, "smsgate: character 4: not a hexadecimal digit\n");
    let e = bad(&["pdu", "decode", &GSM7_DELIVER[..40]], None);
    assert!(
        e.contains("octet 19: TP-SCTS") && e.contains("cut short"),
        "{e}"
    );
    let e = bad(&["pdu", "decode"], Some(&format!("{GSM7_DELIVER}\n0003\n")));
    assert_eq!(
        e,
        "smsgate: PDU 2: octet 1: invalid first octet: message type indicator 11 is reserved\n"
    );
    let e = bad(&["pdu", "encode", "--to", "+86x", "--text", "hi"], None);
    assert!(e.contains("--to"), "{e}");
    let e = bad(
        &[
            "pdu",
            "encode",
            "--to",
            "+86139",
            "--text",
            "hi",
            "--validity",
            "soon",
        ],
        None,
    );
    assert!(e.contains("--validity"), "{e}");
}
