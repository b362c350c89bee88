//! udev/90-smsgate.rules: every line parses as udev rule syntax (udev(7): comma-separated
//! `KEY[{attr}] OP "value"` pairs, backslash continuations, comments), the rules cover the modem
//! and bridge vendors smsgate supports, hide them from ModemManager and give the dialout group
//! access, and every GOTO has its LABEL. When `udevadm verify` exists (systemd >= 253), it runs too.

use std::collections::HashSet;

const RULES: &str = include_str!("../udev/90-smsgate.rules");

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    key: String,
    attr: Option<String>,
    op: String,
    value: String,
}

/// Keys udev(7) knows (match and assignment), enough for this file and a few more.
const KEYS: &[&str] = &[
    "ACTION",
    "DEVPATH",
    "KERNEL",
    "KERNELS",
    "NAME",
    "SYMLINK",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "DRIVER",
    "DRIVERS",
    "ATTR",
    "ATTRS",
    "SYSCTL",
    "ENV",
    "CONST",
    "TAG",
    "TAGS",
    "TEST",
    "PROGRAM",
    "RESULT",
    "OWNER",
    "GROUP",
    "MODE",
    "SECLABEL",
    "RUN",
    "LABEL",
    "GOTO",
    "IMPORT",
    "OPTIONS",
];

/// Parses one logical rule line into its pairs, or says what is wrong.
fn parse_rule(line: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .ok_or_else(|| format!("no operator after {rest:?}"))?;
        let key = &rest[..key_end];
        if !KEYS.contains(&key) {
            return Err(format!("unknown key {key:?}"));
        }
        rest = &rest[key_end..];
        let mut attr = None;
        if let Some(after) = rest.strip_prefix('{') {
            let close = after.find('}').ok_or("unclosed {")?;
            let a = &after[..close];
            if a.is_empty() || a.contains(char::is_whitespace) {
                return Err(format!("bad attribute {a:?} of {key}"));
            }
            attr = Some(a.to_owned());
            rest = &after[close + 1..];
        }
        rest = rest.trim_start();
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("{key}: no operator in {rest:?}"))?;
        rest = rest[op.len()..].trim_start();
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("{key}: value not quoted"))?;
        let close = body
            .find('"')
            .ok_or_else(|| format!("{key}: unterminated value"))?;
        let value = &body[..close];
        rest = body[close + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".into());
            }
        } else if !rest.is_empty() {
            return Err(format!("expected a comma before {rest:?}"));
        }
        let assignment = !matches!(op, "==" | "!=");
        let match_only = [
            "ACTION",
            "DEVPATH",
            "KERNEL",
            "KERNELS",
            "SUBSYSTEM",
            "SUBSYSTEMS",
            "DRIVERS",
            "ATTRS",
            "TAGS",
            "TEST",
            "RESULT",
            "CONST",
        ];
        if assignment && match_only.contains(&key) {
            return Err(format!("{key} can only be matched, not assigned"));
        }
        let assign_only = [
            "LABEL", "GOTO", "IMPORT", "OPTIONS", "RUN", "OWNER", "GROUP", "MODE",
        ];
        if !assignment && assign_only.contains(&key) {
            return Err(format!("{key} can only be assigned, not matched"));
        }
        pairs.push(Pair {
            key: key.to_owned(),
            attr,
            op: op.to_owned(),
            value: value.to_owned(),
        });
    }
    if pairs.is_empty() {
        return Err("empty rule".into());
    }
    Ok(pairs)
}

/// Logical lines (continuations joined), with their first physical line number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let (start, mut acc) = current.take().unwrap_or((n + 1, String::new()));
        let trimmed = line.trim();
        if acc.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            acc.push_str(head);
            acc.push(' ');
            current = Some((start, acc));
        } else {
            acc.push_str(trimmed);
            out.push((start, acc));
        }
    }
    assert!(current.is_none(), "the file ends in a continuation");
    out
}

fn rules() -> Vec<(usize, Vec<Pair>)> {
    logical_lines(RULES)
        .into_iter()
        .map(|(n, line)| match parse_rule(&line) {
            Ok(pairs) => (n, pairs),
            Err(e) => panic!("udev/90-smsgate.rules:{n}: {e}: {line}"),
        })
        .collect()
}

#[test]
fn the_parser_rejects_malformed_rules() {
    for bad in [
        "KERNEL==ttyUSB0",
        "KERNEL==\"ttyUSB0",
        "KERNEL==\"a\" GROUP=\"b\"",
        "KERNEL=~\"a\"",
        "FOO==\"a\"",
        "ENV{=\"a\"",
        "KERNEL==\"a\",",
        "KERNEL=\"a\"",
        "GOTO==\"x\"",
    ] {
        assert!(parse_rule(bad).is_err(), "accepted {bad:?}");
    }
    assert!(parse_rule("ENV{ID_MM_DEVICE_IGNORE}=\"1\", GROUP=\"dialout\"").is_ok());
}

#[test]
fn every_line_parses() {
    let rules = rules();
    assert!(rules.len() > 10);
}

#[test]
fn covers_the_vendors() {
    let vendors: HashSet<String> = rules()
        .iter()
        .flat_map(|(_, pairs)| pairs.iter())
        .filter(|p| p.key == "ENV" && p.attr.as_deref() == Some("ID_VENDOR_ID") && p.op == "==")
        .flat_map(|p| p.value.split('|').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    // Huawei, ZTE, Quectel, SIMCom, Wavecom; FTDI, Prolific, WCH (CH340) bridges.
    for vid in [
        "12d1", "19d2", "2c7c", "1e0e", "114f", "0403", "067b", "1a86",
    ] {
        assert!(
            vendors.contains(vid),
            "vendor {vid} not covered: {vendors:?}"
        );
    }
}

#[test]
fn modems_are_hidden_from_modemmanager_and_owned_by_dialout() {
    let all: Vec<Pair> = rules().into_iter().flat_map(|(_, p)| p).collect();
    let has = |key: &str, attr: Option<&str>, op: &str, value: &str| {
        all.iter()
            .any(|p| p.key == key && p.attr.as_deref() == attr && p.op == op && p.value == value)
    };
    assert!(has("ENV", Some("ID_MM_DEVICE_IGNORE"), "=", "1"));
    assert!(has("GROUP", None, "=", "dialout"));
    assert!(has("MODE", None, "=", "0660"));
    let symlinks: Vec<&Pair> = all.iter().filter(|p| p.key == "SYMLINK").collect();
    assert!(!symlinks.is_empty());
    for s in symlinks {
        assert_eq!(
            s.op, "+=",
            "SYMLINK must add, not replace other rules' links"
        );
        assert!(s.value.starts_with("gsm/"), "{s:?}");
        assert!(
            s.value.contains("ID_USB_INTERFACE_NUM"),
            "named by interface: {s:?}"
        );
    }
}

#[test]
fn every_goto_has_its_label() {
    let rules = rules();
    let labels: HashSet<&str> = rules
        .iter()
        .flat_map(|(_, p)| p.iter())
        .filter(|p| p.key == "LABEL")
        .map(|p| p.value.as_str())
        .collect();
    for (n, pairs) in &rules {
        for p in pairs.iter().filter(|p| p.key == "GOTO") {
            assert!(
                labels.contains(p.value.as_str()),
                "line {n}: no LABEL {:?}",
                p.value
            );
        }
    }
}

#[test]
fn udevadm_verify_when_available() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/udev/90-smsgate.rules");
    let supported = std::process::Command::new("udevadm")
        .args(["verify", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !supported {
        eprintln!("skipped: this udevadm has no `verify` (needs systemd >= 253)");
        return;
    }
    let out = std::process::Command::new("udevadm")
        .args(["verify", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "udevadm verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
