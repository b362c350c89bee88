//! udev/90-smsgate.rules: every line parses as udev rule syntax (udev(7): comma-separated
//! `KEY[{attr}] OP "value"` pairs, backslash continuations, comments), the rules cover the modem
//! and bridge vendors smsgate supports, hide them from ModemManager and give the dialout group
//! access, and every GOTO has its LABEL. A small evaluator of the same syntax (matches with
//! udev's glob patterns and `|` alternatives, parent ATTRS, ENV, GOTO/LABEL, `$env{}` and
//! `$attr{}` substitution) runs the file against described ports of real modules, to check
//! which port is the AT primary (one `/dev/gsm/` link per SIM) and which the secondary. When
//! `udevadm verify` exists (systemd >= 253), it runs too.

use std::collections::{HashMap, HashSet};

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
        assert!(
            s.value.starts_with("gsm/") || s.value.starts_with("gsm-aux/"),
            "{s:?}"
        );
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

/// udev's fnmatch-style pattern: `*`, `?`, `[a-z0-9]` classes, and `|` between alternatives.
fn udev_match(pattern: &str, value: &str) -> bool {
    fn glob(p: &[char], v: &[char]) -> bool {
        match p.first() {
            None => v.is_empty(),
            Some('*') => (0..=v.len()).any(|i| glob(&p[1..], &v[i..])),
            Some('?') => !v.is_empty() && glob(&p[1..], &v[1..]),
            Some('[') => {
                let Some(close) = p.iter().position(|&c| c == ']') else {
                    return false;
                };
                let class = &p[1..close];
                let Some(&c) = v.first() else { return false };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit && glob(&p[close + 1..], &v[1..])
            }
            Some(&c) => v.first() == Some(&c) && glob(&p[1..], &v[1..]),
        }
    }
    let v: Vec<char> = value.chars().collect();
    pattern
        .split('|')
        .any(|alt| glob(&alt.chars().collect::<Vec<_>>(), &v))
}

/// A tty as udev sees it: its own properties (after `IMPORT{builtin}="usb_id"`) and its
/// parents' sysfs attributes, nearest first (the USB interface, then the USB device).
struct Tty {
    kernel: &'static str,
    env: HashMap<String, String>,
    parents: Vec<HashMap<&'static str, &'static str>>,
}

/// What the rules did to a tty.
#[derive(Debug, Default)]
struct Outcome {
    env: HashMap<String, String>,
    symlinks: Vec<String>,
    group: Option<String>,
}

fn substitute(value: &str, env: &HashMap<String, String>, attrs: &HashMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (map_env, after) = if let Some(t) = tail.strip_prefix("$env{") {
            (true, t)
        } else if let Some(t) = tail.strip_prefix("$attr{") {
            (false, t)
        } else {
            panic!("unsupported substitution in {value:?}");
        };
        let close = after.find('}').unwrap();
        let key = &after[..close];
        let v = if map_env {
            env.get(key).cloned().unwrap_or_default()
        } else {
            attrs.get(key).map(|s| s.to_string()).unwrap_or_default()
        };
        out.push_str(&v);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs the rules on one `add` event of `tty`.
fn evaluate(tty: &Tty) -> Outcome {
    let rules = rules();
    let mut out = Outcome {
        env: tty.env.clone(),
        ..Outcome::default()
    };
    let mut i = 0;
    'rules: while i < rules.len() {
        let pairs = &rules[i].1;
        i += 1;
        // Keys that look at parents must all match on the same one.
        let parent_keys: Vec<&Pair> = pairs
            .iter()
            .filter(|p| matches!(p.key.as_str(), "SUBSYSTEMS" | "ATTRS"))
            .collect();
        let mut matched_parent: Option<&HashMap<&str, &str>> = None;
        if !parent_keys.is_empty() {
            matched_parent = tty.parents.iter().find(|attrs| {
                parent_keys.iter().all(|p| {
                    let have = match p.key.as_str() {
                        "SUBSYSTEMS" => attrs.get("subsystem").copied(),
                        _ => attrs.get(p.attr.as_deref().unwrap()).copied(),
                    };
                    let hit = have.is_some_and(|h| udev_match(&p.value, h));
                    if p.op == "==" {
                        hit
                    } else {
                        !hit
                    }
                })
            });
            if matched_parent.is_none() {
                continue;
            }
        }
        for p in pairs
            .iter()
            .filter(|p| matches!(p.op.as_str(), "==" | "!="))
        {
            let have = match p.key.as_str() {
                "ACTION" => "add".to_string(),
                "SUBSYSTEM" => "tty".to_string(),
                "KERNEL" => tty.kernel.to_string(),
                "ENV" => out
                    .env
                    .get(p.attr.as_deref().unwrap())
                    .cloned()
                    .unwrap_or_default(),
                "SUBSYSTEMS" | "ATTRS" => continue,
                other => panic!("the evaluator does not know {other}"),
            };
            if udev_match(&p.value, &have) != (p.op == "==") {
                continue 'rules;
            }
        }
        let attrs = matched_parent.cloned().unwrap_or_default();
        let mut goto = None;
        for p in pairs
            .iter()
            .filter(|p| !matches!(p.op.as_str(), "==" | "!="))
        {
            let value = substitute(&p.value, &out.env, &attrs);
            match p.key.as_str() {
                "ENV" => {
                    out.env.insert(p.attr.clone().unwrap(), value);
                }
                "SYMLINK" => out.symlinks.push(value),
                "GROUP" => out.group = Some(value),
                "GOTO" => goto = Some(value),
                "MODE" | "LABEL" | "IMPORT" => {}
                other => panic!("the evaluator does not know {other}"),
            }
        }
        if let Some(label) = goto {
            i = rules
                .iter()
                .position(|(_, ps)| ps.iter().any(|p| p.key == "LABEL" && p.value == label))
                .unwrap();
        }
    }
    out
}

/// A tty of interface `ifnum` of USB device `vid:pid` plugged into bus 1, port 1.4; `class`
/// is the interface's (class, subclass, protocol).
fn usb_tty(vid: &str, pid: &str, ifnum: &'static str, class: [&'static str; 3]) -> Tty {
    let env = HashMap::from([
        ("ID_VENDOR_ID".to_string(), vid.to_string()),
        ("ID_MODEL_ID".to_string(), pid.to_string()),
        ("ID_USB_INTERFACE_NUM".to_string(), ifnum.to_string()),
    ]);
    let interface = HashMap::from([
        ("subsystem", "usb"),
        ("bInterfaceNumber", ifnum),
        ("bInterfaceClass", class[0]),
        ("bInterfaceSubClass", class[1]),
        ("bInterfaceProtocol", class[2]),
    ]);
    let device = HashMap::from([("subsystem", "usb"), ("busnum", "1"), ("devpath", "1.4")]);
    Tty {
        kernel: "ttyUSB2",
        env,
        parents: vec![interface, device],
    }
}

const VENDOR_CLASS: [&str; 3] = ["ff", "ff", "ff"];

/// (role, gsm links) of one port.
fn role(tty: &Tty) -> (String, Vec<String>) {
    let o = evaluate(tty);
    (
        o.env.get("SMSGATE_PORT_ROLE").cloned().unwrap_or_default(),
        o.symlinks,
    )
}

#[test]
fn the_matcher_follows_udev_patterns() {
    assert!(udev_match("ttyUSB[0-9]*|ttyACM[0-9]*", "ttyACM12"));
    assert!(!udev_match("ttyUSB[0-9]*|ttyACM[0-9]*", "ttyS0"));
    assert!(udev_match("?*", "x") && !udev_match("?*", ""));
    assert!(udev_match("0125|0121", "0121") && !udev_match("0125|0121", "01251"));
}

/// Quectel EC25 (2c7c:0125): ttyUSB2 (if02) is the AT primary and the only /dev/gsm/ name;
/// ttyUSB3 (if03) is the secondary under /dev/gsm-aux/; the QCDM and GPS ports get no link.
#[test]
fn quectel_ec25_has_one_primary_at_port() {
    let port = |ifnum| role(&usb_tty("2c7c", "0125", ifnum, VENDOR_CLASS));
    assert_eq!(
        port("02"),
        ("primary".into(), vec!["gsm/usb1-1.4-if02".into()])
    );
    assert_eq!(
        port("03"),
        ("secondary".into(), vec!["gsm-aux/usb1-1.4-if03".into()])
    );
    assert_eq!(port("00"), ("other".into(), vec![]));
    assert_eq!(port("01"), ("other".into(), vec![]));
    let o = evaluate(&usb_tty("2c7c", "0125", "02", VENDOR_CLASS));
    assert_eq!(o.env["ID_MM_PORT_TYPE_AT_PRIMARY"], "1");
    assert_eq!(o.env["ID_MM_DEVICE_IGNORE"], "1");
    assert_eq!(o.env["SMSGATE_DIALECT"], "quectel");
    assert_eq!(o.group.as_deref(), Some("dialout"));
    let o = evaluate(&usb_tty("2c7c", "0125", "03", VENDOR_CLASS));
    assert_eq!(o.env["ID_MM_PORT_TYPE_AT_SECONDARY"], "1");
    assert!(!o.env.contains_key("ID_MM_PORT_TYPE_AT_PRIMARY"));
    // A Quectel product missing from the table keeps the old behaviour: linked, role unknown.
    assert_eq!(
        role(&usb_tty("2c7c", "9999", "03", VENDOR_CLASS)),
        ("unknown".into(), vec!["gsm/usb1-1.4-if03".into()])
    );
}

#[test]
fn simcom_zte_and_huawei_primaries() {
    let simcom = |ifnum| role(&usb_tty("1e0e", "9001", ifnum, VENDOR_CLASS)).0;
    assert_eq!(
        [
            simcom("00"),
            simcom("01"),
            simcom("02"),
            simcom("03"),
            simcom("04")
        ],
        ["other", "other", "primary", "secondary", "other"]
    );
    // ZTE MF626 (19d2:0031): if03 primary, if01 secondary.
    let zte = |ifnum| role(&usb_tty("19d2", "0031", ifnum, VENDOR_CLASS)).0;
    assert_eq!(
        [zte("00"), zte("01"), zte("02"), zte("03")],
        ["other", "secondary", "other", "primary"]
    );
    assert_eq!(
        role(&usb_tty("19d2", "0117", "02", VENDOR_CLASS)).0,
        "primary"
    );
    // Huawei by interface protocol: 02 primary, 01 the PPP port, 05/14 GPS.
    let huawei = |class| role(&usb_tty("12d1", "1506", "02", class));
    assert_eq!(
        huawei(["ff", "02", "02"]),
        ("primary".into(), vec!["gsm/usb1-1.4-if02".into()])
    );
    assert_eq!(
        huawei(["ff", "01", "01"]),
        ("secondary".into(), vec!["gsm-aux/usb1-1.4-if02".into()])
    );
    assert_eq!(huawei(["ff", "01", "05"]).0, "other");
    assert_eq!(huawei(VENDOR_CLASS).0, "unknown");
}

#[test]
fn bridges_are_primary_and_other_devices_untouched() {
    for vid in ["0403", "067b", "1a86", "114f"] {
        assert_eq!(
            role(&usb_tty(vid, "6001", "00", VENDOR_CLASS)),
            ("primary".into(), vec!["gsm/usb1-1.4-if00".into()]),
            "{vid}"
        );
    }
    let mouse = evaluate(&usb_tty("046d", "c52b", "00", VENDOR_CLASS));
    assert!(mouse.symlinks.is_empty());
    assert!(!mouse.env.contains_key("ID_MM_DEVICE_IGNORE"));
    assert!(!mouse.env.contains_key("SMSGATE_PORT_ROLE"));
}

/// The README's glob `/dev/gsm/*` sees exactly one port per SIM of a listed module.
#[test]
fn one_gsm_link_per_listed_module() {
    for (vid, pid, class) in [
        ("2c7c", "0125", VENDOR_CLASS),
        ("2c7c", "0296", VENDOR_CLASS),
        ("1e0e", "9001", VENDOR_CLASS),
        ("19d2", "0031", VENDOR_CLASS),
    ] {
        let links: Vec<String> = ["00", "01", "02", "03", "04", "05"]
            .into_iter()
            .flat_map(|ifnum| role(&usb_tty(vid, pid, ifnum, class)).1)
            .filter(|l| l.starts_with("gsm/"))
            .collect();
        assert_eq!(links.len(), 1, "{vid}:{pid}: {links:?}");
    }
}
