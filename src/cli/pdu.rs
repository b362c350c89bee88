//! `smsgate pdu encode|decode|count`: the codec on the command line. Thin: parse arguments, call
//! `crate::pdu`, print. Every malformed input (number, hex, PDU, duration) becomes a
//! [`BadInput`] so the binary exits 2 with one line naming the problem (and the octet).

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::BadInput;
use crate::pdu::{
    self, Address, Assembled, Body, ConcatKind, Incomplete, MessageClass, Reassembler, Sms,
    SubmitOptions, Tpdu, ValidityPeriod,
};

#[derive(Debug, Args)]
pub struct PduArgs {
    #[command(subcommand)]
    pub command: PduCommand,
}

#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Encode a text as SMS-SUBMIT PDUs: one `LENGTH HEX` line per part (LENGTH for AT+CMGS).
    Encode(EncodeArgs),
    /// Decode PDUs given as arguments, or one per line on stdin.
    Decode(DecodeArgs),
    /// How many SMS parts a text costs, in which encoding, and its units.
    Count(CountArgs),
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Recipient: "+8613912345678" (international) or "075512345678" (national/unknown).
    #[arg(long)]
    pub to: String,
    /// The message text (GSM 7-bit when every character fits, else UCS2).
    #[arg(long)]
    pub text: String,
    /// Service centre number; without it the PDU starts with "00" (the modem's +CSCA).
    #[arg(long)]
    pub smsc: Option<String>,
    /// Ask for a status report (TP-SRR).
    #[arg(long)]
    pub status_report: bool,
    /// Validity: a duration (30m, 12h, 1d, 4d, 2w; rounded up to what the PDU can carry) or an
    /// absolute RFC 3339 time with offset (2026-12-01T08:00:00+08:00).
    #[arg(long, value_name = "DURATION")]
    pub validity: Option<String>,
    /// Message class 0-3 (0 = flash).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub class: Option<u8>,
    /// Concatenation reference for long texts (random when not given).
    #[arg(long = "ref", value_name = "N")]
    pub reference: Option<u16>,
    /// Use a 16-bit concatenation reference (152 septets / 66 UCS2 characters per part).
    #[arg(long)]
    pub ref16: bool,
    /// Print a JSON array instead of `LENGTH HEX` lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Print JSON: one object, or an array when there are several PDUs.
    #[arg(long)]
    pub json: bool,
    /// Reassemble concatenated parts into whole messages.
    #[arg(long)]
    pub join: bool,
    /// PDUs in hex (SMSC part first, as +CMGR/+CMT show them); stdin when none.
    pub hex: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CountArgs {
    #[arg(long)]
    pub text: String,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PduArgs) -> anyhow::Result<()> {
    let out = match args.command {
        PduCommand::Encode(a) => encode(a)?,
        PduCommand::Decode(a) => decode(a)?,
        PduCommand::Count(a) => count(a),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

fn bad(msg: String) -> anyhow::Error {
    BadInput(msg).into()
}

/// "30m", "12h", "1d", "2w" (a bare number is minutes).
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (s.get(..i)?, s.get(i..)?),
        None => (s, "m"),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

/// A duration (relative format) or an RFC 3339 time with offset (absolute format, kept in the
/// given offset rounded to quarter hours).
fn parse_validity(s: &str) -> Option<ValidityPeriod> {
    if let Some(d) = parse_duration(s) {
        return Some(ValidityPeriod::from_duration(d));
    }
    let ts: jiff::Timestamp = s.trim().parse().ok()?;
    let t = s.trim();
    let offset = if t.ends_with('Z') || t.ends_with('z') {
        0
    } else {
        let tail = t.get(t.len().checked_sub(6)?..)?;
        let sign = match tail.get(..1)? {
            "+" => 1,
            "-" => -1,
            _ => return None,
        };
        let h: i32 = tail.get(1..3)?.parse().ok()?;
        let m: i32 = tail.get(4..6)?.parse().ok()?;
        sign * (h * 3600 + m * 60)
    };
    Some(ValidityPeriod::Absolute(pdu::Scts::from_timestamp(
        ts, offset,
    )))
}

fn encode(a: EncodeArgs) -> anyhow::Result<String> {
    let recipient = Address::parse_number(&a.to).map_err(|e| bad(format!("--to: {e}")))?;
    let mut opts = SubmitOptions::new(recipient);
    if let Some(s) = &a.smsc {
        opts.smsc = Some(Address::parse_number(s).map_err(|e| bad(format!("--smsc: {e}")))?);
    }
    opts.status_report = a.status_report;
    if let Some(v) = &a.validity {
        opts.validity = Some(parse_validity(v).ok_or_else(|| {
            bad(format!(
                "--validity {v:?}: expected a duration such as 30m, 12h, 1d, 4d or 2w, \
                 or an RFC 3339 time such as 2026-12-01T08:00:00+08:00"
            ))
        })?);
    }
    opts.class = a.class.map(MessageClass::from_bits);
    opts.concat = if a.ref16 {
        ConcatKind::Concat16
    } else {
        ConcatKind::Concat8
    };
    opts.concat_reference = match a.reference {
        Some(r) if !a.ref16 && r > 255 => {
            return Err(bad(format!(
                "--ref {r}: an 8-bit reference is 0-255 (add --ref16 for 16-bit)"
            )))
        }
        Some(r) => r,
        None if a.ref16 => rand::random(),
        None => u16::from(rand::random::<u8>()),
    };
    let parts = pdu::encode_submit(&opts, &a.text).map_err(|e| bad(format!("--text: {e}")))?;
    if a.json {
        let v: Vec<Value> = parts
            .iter()
            .map(|p| {
                json!({
                    "part": p.seq,
                    "parts": p.total,
                    "length": p.cmgs_length,
                    "pdu": p.hex(),
                    "encoding": p.encoding.as_str(),
                })
            })
            .collect();
        return Ok(format!("{}\n", Value::Array(v)));
    }
    Ok(parts
        .iter()
        .map(|p| format!("{} {}\n", p.cmgs_length, p.hex()))
        .collect())
}

fn count(a: CountArgs) -> String {
    let c = pdu::count(&a.text);
    if a.json {
        return format!(
            "{}\n",
            json!({"encoding": c.encoding.as_str(), "parts": c.parts, "units": c.units})
        );
    }
    let unit = if c.encoding == pdu::Encoding::Gsm7 {
        "septets"
    } else {
        "UTF-16 units"
    };
    format!(
        "{}: {} part{}, {} {unit}\n",
        c.encoding.as_str(),
        c.parts,
        if c.parts == 1 { "" } else { "s" },
        c.units
    )
}

/// Parses one hex PDU: SMSC part + TPDU, or (when that fails) a bare TPDU as some modems'
/// +CDS lines carry; the error reported is the one for the usual form.
fn parse_one(hex: &str) -> Result<Sms, pdu::PduError> {
    let bytes = pdu::decode_hex(hex)?;
    Sms::parse(&bytes).or_else(|e| {
        Tpdu::parse(&bytes)
            .map(|tpdu| Sms { smsc: None, tpdu })
            .map_err(|_| e)
    })
}

fn decode(a: DecodeArgs) -> anyhow::Result<String> {
    let inputs: Vec<String> = if a.hex.is_empty() {
        let mut v = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading stdin")?;
            if !line.trim().is_empty() {
                v.push(line.trim().to_string());
            }
        }
        v
    } else {
        a.hex.clone()
    };
    if inputs.is_empty() {
        return Err(bad(
            "no PDU given (pass hex arguments or lines on stdin)".into()
        ));
    }
    let many = inputs.len() > 1;
    let mut parsed = Vec::with_capacity(inputs.len());
    for (i, h) in inputs.iter().enumerate() {
        match parse_one(h) {
            Ok(s) => parsed.push(s),
            Err(e) if many => return Err(bad(format!("PDU {}: {e}", i + 1))),
            Err(e) => return Err(bad(format!("{e}"))),
        }
    }
    if a.join {
        return Ok(joined(parsed, a.json));
    }
    if a.json {
        let mut v: Vec<Value> = parsed.iter().map(sms_json).collect();
        let out = if v.len() == 1 {
            v.remove(0)
        } else {
            Value::Array(v)
        };
        return Ok(format!("{out}\n"));
    }
    let blocks: Vec<String> = parsed
        .iter()
        .enumerate()
        .map(|(i, s)| plain_block(&format!("PDU {}", i + 1), s, true))
        .collect();
    Ok(blocks.join("\n"))
}

fn joined(parsed: Vec<Sms>, as_json: bool) -> String {
    let mut r = Reassembler::new();
    let mut done: Vec<Assembled> = parsed.into_iter().filter_map(|s| r.push(s)).collect();
    let incomplete: Vec<Incomplete> = r.take_incomplete();
    for inc in incomplete {
        let body = join_bodies(&inc.parts);
        done.push(Assembled {
            address: inc.address,
            reference: Some(inc.reference),
            body,
            parts: inc.parts,
        });
    }
    if as_json {
        let mut v: Vec<Value> = done.iter().map(assembled_json).collect();
        let out = if v.len() == 1 {
            v.remove(0)
        } else {
            Value::Array(v)
        };
        return format!("{out}\n");
    }
    let blocks: Vec<String> = done
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let Some(first) = m.parts.first() else {
                return String::new();
            };
            let mut b = plain_block(&format!("Message {}", i + 1), first, false);
            let (total, missing) = totals(m);
            if total > 1 {
                b.push_str(&format!(
                    "  {:<13}{} of {total} received",
                    "Parts:",
                    m.parts.len()
                ));
                if !missing.is_empty() {
                    b.push_str(&format!(", missing {missing:?}"));
                }
                b.push('\n');
            }
            b.push_str(&format!("  {:<13}{}\n", "Text:", body_text(&m.body)));
            b
        })
        .collect();
    blocks.join("\n")
}

fn join_bodies(parts: &[Sms]) -> Body {
    let mut t = String::new();
    for p in parts {
        match p.tpdu.user_data().map(|u| &u.body) {
            Some(Body::Text(x)) => t.push_str(x),
            Some(Body::Data(x)) => t.push_str(&String::from_utf8_lossy(x)),
            None => {}
        }
    }
    Body::Text(t)
}

fn totals(m: &Assembled) -> (u8, Vec<u8>) {
    let total = m
        .parts
        .first()
        .and_then(|p| p.tpdu.user_data())
        .and_then(|u| u.udh.as_ref())
        .and_then(|h| h.concat_info())
        .map_or(1, |c| c.total);
    let have: Vec<u8> = m
        .parts
        .iter()
        .filter_map(|p| {
            p.tpdu
                .user_data()?
                .udh
                .as_ref()?
                .concat_info()
                .map(|c| c.seq)
        })
        .collect();
    let missing = if m.reference.is_some() {
        (1..=total).filter(|s| !have.contains(s)).collect()
    } else {
        Vec::new()
    };
    (total, missing)
}

fn body_text(b: &Body) -> String {
    match b {
        Body::Text(t) => t.clone(),
        Body::Data(d) => format!("(8-bit data) {}", pdu::encode_hex(d)),
    }
}

fn assembled_json(m: &Assembled) -> Value {
    let mut v = m.parts.first().map(sms_json).unwrap_or(Value::Null);
    let (total, missing) = totals(m);
    if let Value::Object(o) = &mut v {
        match &m.body {
            Body::Text(t) => {
                o.insert("text".into(), json!(t));
                o.insert("data_hex".into(), Value::Null);
            }
            Body::Data(d) => {
                o.insert("text".into(), Value::Null);
                o.insert("data_hex".into(), json!(pdu::encode_hex(d)));
            }
        }
        o.insert("parts".into(), json!(m.parts.len()));
        o.insert("total".into(), json!(total));
        o.insert("complete".into(), json!(missing.is_empty()));
        o.insert("missing".into(), json!(missing));
    }
    v
}

/// The decode JSON object (keys documented in README).
fn sms_json(sms: &Sms) -> Value {
    let t = &sms.tpdu;
    let ud = t.user_data();
    let (text, data_hex) = match ud.map(|u| &u.body) {
        Some(Body::Text(s)) => (json!(s), Value::Null),
        Some(Body::Data(d)) => (Value::Null, json!(pdu::encode_hex(d))),
        None => (Value::Null, Value::Null),
    };
    let udh = ud.and_then(|u| u.udh.as_ref()).map(|h| {
        json!({
            "concat": h.concat_info(),
            "ports": h.ports(),
            "elements": h.elements.len(),
        })
    });
    let dcs = t.dcs();
    let mut v = json!({
        "type": t.kind(),
        "smsc": sms.smsc.as_ref().map(|a| a.to_string()),
        "sender": Value::Null,
        "recipient": Value::Null,
        "timestamp": Value::Null,
        "discharge_time": Value::Null,
        "message_reference": Value::Null,
        "status": Value::Null,
        "status_text": Value::Null,
        "status_class": Value::Null,
        "encoding": dcs.map(|d| d.encoding().as_str()),
        "dcs": dcs.map(|d| d.octet()),
        "class": dcs.and_then(|d| d.class()).map(|c| c.number()),
        "text": text,
        "data_hex": data_hex,
        "udh": udh,
        "validity": Value::Null,
        "status_report_requested": Value::Null,
        "tpdu_length": sms.tpdu_len(),
    });
    let Value::Object(o) = &mut v else {
        return v;
    };
    let mut set = |k: &str, x: Value| {
        o.insert(k.to_string(), x);
    };
    match t {
        Tpdu::Deliver(d) => {
            set("sender", json!(d.sender.to_string()));
            set("timestamp", json!(d.scts.to_rfc3339()));
            set("status_report_requested", json!(d.status_report_indication));
            set("pid", json!(d.pid));
        }
        Tpdu::Submit(s) => {
            set("recipient", json!(s.recipient.to_string()));
            set("message_reference", json!(s.message_reference));
            set("validity", json!(s.validity.map(|v| v.describe())));
            set("status_report_requested", json!(s.status_report_request));
            set("pid", json!(s.pid));
        }
        Tpdu::StatusReport(r) => {
            set("recipient", json!(r.recipient.to_string()));
            set("message_reference", json!(r.message_reference));
            set("timestamp", json!(r.scts.to_rfc3339()));
            set("discharge_time", json!(r.discharge_time.to_rfc3339()));
            set("status", json!(r.status.0));
            set("status_text", json!(r.status.description()));
            set("status_class", json!(r.status.class()));
        }
    }
    v
}

fn addr_line(a: &Address) -> String {
    format!("{a} (type 0x{:02X})", a.type_octet())
}

/// A readable block: a title line, then `  Label:       value` lines (the text left out when
/// the caller prints a joined one).
fn plain_block(title: &str, sms: &Sms, show_text: bool) -> String {
    let t = &sms.tpdu;
    let mut lines: Vec<(&str, String)> = Vec::new();
    lines.push((
        "SMSC:",
        sms.smsc
            .as_ref()
            .map_or_else(|| "(none: the modem's +CSCA)".to_string(), addr_line),
    ));
    match t {
        Tpdu::Deliver(d) => {
            lines.push(("Sender:", addr_line(&d.sender)));
            lines.push((
                "Timestamp:",
                d.scts
                    .to_rfc3339()
                    .unwrap_or_else(|| "(not a valid date)".into()),
            ));
            if d.status_report_indication {
                lines.push(("Report:", "the sender asked for a status report".into()));
            }
        }
        Tpdu::Submit(s) => {
            lines.push(("Recipient:", addr_line(&s.recipient)));
            lines.push(("Reference:", s.message_reference.to_string()));
            lines.push((
                "Validity:",
                s.validity.map_or_else(|| "none".into(), |v| v.describe()),
            ));
            lines.push((
                "Report:",
                if s.status_report_request {
                    "requested".into()
                } else {
                    "not requested".into()
                },
            ));
        }
        Tpdu::StatusReport(r) => {
            lines.push(("Recipient:", addr_line(&r.recipient)));
            lines.push(("Reference:", r.message_reference.to_string()));
            lines.push((
                "Status:",
                format!("0x{:02X} {}", r.status.0, r.status.description()),
            ));
            lines.push((
                "Submitted:",
                r.scts
                    .to_rfc3339()
                    .unwrap_or_else(|| "(not a valid date)".into()),
            ));
            lines.push((
                "Discharged:",
                r.discharge_time
                    .to_rfc3339()
                    .unwrap_or_else(|| "(not a valid date)".into()),
            ));
        }
    }
    if let Some(d) = t.dcs() {
        let class = d.class().map_or_else(
            || "no class".to_string(),
            |c| format!("class {}", c.number()),
        );
        lines.push((
            "Encoding:",
            format!(
                "{} (DCS 0x{:02X}, {class})",
                d.encoding().as_str(),
                d.octet()
            ),
        ));
    }
    if let Some(u) = t.user_data() {
        if let Some(h) = &u.udh {
            let mut parts = Vec::new();
            if let Some(c) = h.concat_info() {
                parts.push(format!(
                    "part {} of {}, reference {}{}",
                    c.seq,
                    c.total,
                    c.reference,
                    if c.wide { " (16-bit)" } else { "" }
                ));
            }
            if let Some(p) = h.ports() {
                parts.push(format!("ports {} <- {}", p.destination, p.source));
            }
            let other = h
                .elements
                .iter()
                .filter(|e| matches!(e, pdu::InformationElement::Other { .. }))
                .count();
            if other > 0 {
                parts.push(format!("{other} other element(s)"));
            }
            lines.push(("UDH:", parts.join("; ")));
        }
        if show_text {
            lines.push(("Text:", body_text(&u.body)));
        }
    }
    lines.push(("TPDU length:", sms.tpdu_len().to_string()));
    let mut out = format!("{title}: SMS-{}\n", t.kind().to_uppercase());
    for (k, v) in lines {
        out.push_str(&format!("  {k:<13}{v}\n"));
    }
    out
}
