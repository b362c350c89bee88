//! The I/O half of `smsgate diag`: one port probed over the driver's own
//! [`AtSession`], typed commands and dialects (the ModemManager/gammu way: find a baud that
//! answers a harmless command, then ask the identity and state commands one by one, each with
//! a short timeout), and many ports probed concurrently. What must always hold: a held port is
//! never written to; a link error ends the probe of that port and is reported, never a panic;
//! the findings are judged by [`judge`] alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::holder::{self, Exclusivity};
use super::trace::TraceEntry;
use super::verdict::{judge, Signal};
use super::{DiagOptions, PortReport, SendTestOutcome, SimState};
use crate::at::{
    after_prefix, split_fields, unquote, AtCommand, Cgmi, Cgmm, Cgmr, Cgsn, Cimi, CmeError, Cmee,
    Cmgf, Cmgs, CmsError, CopsQuery, CpinQuery, CscaQuery, Csq, DeviceError, Digester,
    IccidCommand, PinStatus, Raw, ReadIccid, RegKind, RegQuery, RegStatus,
};
use crate::bank::PortPatterns;
use crate::modem::encode::{encode_part_for, Wire};
use crate::modem::{dialect, open_port, AtSession, Dialect, LinkError};
use crate::number::carrier_of_imsi;
use crate::pdu::{encode_submit, Address, SubmitOptions};

/// The text of the test SMS (GSM 7-bit, one part).
pub const TEST_TEXT: &str = "smsgate diag: test message";

/// One message storage as `AT+CPMS?` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Storage {
    pub mem: String,
    pub used: u32,
    pub total: u32,
}

/// `AT+CPMS?`: `+CPMS: "<mem1>",<used1>,<total1>,"<mem2>",...` (TS 27.005 §3.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpmsQuery;

impl AtCommand for CpmsQuery {
    type Response = Vec<Storage>;
    fn line(&self) -> String {
        "AT+CPMS?".into()
    }
    fn prefix(&self) -> Option<&'static str> {
        Some("+CPMS")
    }
    fn parse(&self, lines: &[String]) -> Result<Vec<Storage>, DeviceError> {
        let bad = || DeviceError::BadReply(format!("+CPMS?: {:?}", lines.join(" | ")));
        let params = lines
            .iter()
            .find_map(|l| after_prefix(l, "+CPMS"))
            .ok_or_else(bad)?;
        let fields = split_fields(params);
        let mut out = Vec::new();
        for chunk in fields.chunks(3) {
            let [mem, used, total] = chunk else {
                return Err(bad());
            };
            match (unquote(used).parse(), unquote(total).parse()) {
                (Ok(used), Ok(total)) => out.push(Storage {
                    mem: unquote(mem).to_string(),
                    used,
                    total,
                }),
                _ => return Err(bad()),
            }
        }
        if out.is_empty() {
            return Err(bad());
        }
        Ok(out)
    }
}

/// The ports matching `patterns` now (configured names; one per device).
pub fn discover(patterns: &[String]) -> Vec<PathBuf> {
    match PortPatterns::new(patterns) {
        Ok(p) => p.scan().into_values().collect(),
        Err(e) => {
            tracing::warn!("diag: {e}");
            Vec::new()
        }
    }
}

/// Probes every port concurrently; reports come back in the order of `ports`. Two names of
/// one device (`/dev/gsm/huawei-1.2` and `/dev/ttyUSB0`) are probed once, since two
/// concurrent opens would see each other as "held"; the later name gets a copy of the report.
pub async fn diagnose(ports: &[PathBuf], opts: &DiagOptions) -> Vec<PortReport> {
    let mut set = tokio::task::JoinSet::new();
    let mut first_of: Vec<(PathBuf, usize)> = Vec::new();
    let mut copies: Vec<(usize, usize)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        if let Ok(dev) = std::fs::canonicalize(p) {
            if let Some((_, first)) = first_of.iter().find(|(d, _)| *d == dev) {
                copies.push((i, *first));
                continue;
            }
            first_of.push((dev, i));
        }
        let p = p.clone();
        let o = opts.clone();
        set.spawn(async move { (i, probe_port(&p, &o).await) });
    }
    let mut out: Vec<Option<PortReport>> = vec![None; ports.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(r);
                }
            }
            Err(e) => tracing::error!("diag: a probe task failed: {e}"),
        }
    }
    for (i, first) in copies {
        let copy = out.get(first).cloned().flatten();
        if let (Some(slot), Some(mut r), Some(p)) = (out.get_mut(i), copy, ports.get(i)) {
            r.port = p.display().to_string();
            *slot = Some(r);
        }
    }
    out.into_iter()
        .zip(ports)
        .map(|(r, p)| {
            r.unwrap_or_else(|| {
                let mut r = PortReport {
                    port: p.display().to_string(),
                    link_error: Some("probe task failed".into()),
                    ..PortReport::default()
                };
                r.verdict = judge(&r);
                r
            })
        })
        .collect()
}

/// Probes one port: who holds it, which baud answers, then identity and state.
pub async fn probe_port(port: &Path, opts: &DiagOptions) -> PortReport {
    let started = Instant::now();
    let mut r = PortReport {
        port: port.display().to_string(),
        ..PortReport::default()
    };
    let trace = Arc::new(Mutex::new(Vec::new()));
    probe_into(port, opts, &mut r, &trace).await;
    if let Ok(mut t) = trace.lock() {
        r.trace = std::mem::take(&mut *t);
    }
    r.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    r.verdict = judge(&r);
    r
}

async fn probe_into(
    port: &Path,
    opts: &DiagOptions,
    r: &mut PortReport,
    trace: &Arc<Mutex<Vec<TraceEntry>>>,
) {
    let device = match std::fs::canonicalize(port) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            r.not_found = true;
            return;
        }
        Err(e) => {
            r.open_error = Some(e.to_string());
            return;
        }
    };
    r.device = Some(device.display().to_string());
    match holder::check_exclusive(&device) {
        Ok(Exclusivity::Held) => {
            r.busy = true;
            r.holders = holder::holders(&device);
            return;
        }
        Ok(Exclusivity::Free) => {}
        Err(e) => {
            r.open_error = Some(e.to_string());
            return;
        }
    }
    let path = device.to_string_lossy().into_owned();
    for &baud in &opts.bauds {
        let stream = match open_port(&path, baud) {
            Ok(s) => s,
            // EBUSY is TIOCEXCL (for non-root); the flock message is serialport's exclusive
            // advisory lock, taken by another smsgate or any serialport/flock user.
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.to_string().contains("exclusive lock") =>
            {
                r.busy = true;
                r.holders = holder::holders(&device);
                return;
            }
            Err(e) => {
                r.open_error = Some(e.to_string());
                return;
            }
        };
        let mut session = AtSession::new(stream, Digester::new());
        if opts.trace {
            let t = Arc::clone(trace);
            session.set_trace(move |dir, bytes| {
                if let Ok(mut v) = t.lock() {
                    v.push(TraceEntry::new(dir, bytes));
                }
            });
        }
        match alive(&mut session, opts).await {
            Ok(true) => {
                r.answered = true;
                r.baud = Some(baud);
                if let Err(e) = interrogate(&mut session, opts, r).await {
                    r.link_error = Some(e.to_string());
                }
                r.garbage_bytes = session.digester().stats().garbage_bytes;
                return;
            }
            Ok(false) => {}
            Err(e) => {
                r.open_error = Some(e.to_string());
                return;
            }
        }
    }
}

/// Any final result to `ATE0` (even ERROR) proves a modem is listening at this baud. ATE0 and
/// not a bare AT because some modules (PHS) refuse a bare AT, and echo off is wanted anyway.
async fn alive<P: AsyncRead + AsyncWrite + Unpin>(
    s: &mut AtSession<P>,
    opts: &DiagOptions,
) -> Result<bool, LinkError> {
    let probe = Raw {
        line: "ATE0".into(),
        timeout: opts.probe_timeout,
    };
    for _ in 0..opts.probe_attempts.max(1) {
        match s.send(&probe).await {
            Ok(_) => return Ok(true),
            Err(LinkError::Timeout { .. } | LinkError::Garbage { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

async fn ask<P: AsyncRead + AsyncWrite + Unpin, C: AtCommand>(
    s: &mut AtSession<P>,
    cmd: &C,
    timeout: Duration,
) -> Result<Result<C::Response, DeviceError>, LinkError> {
    s.send_with_timeout(cmd, timeout).await
}

fn sim_state(answer: Result<PinStatus, DeviceError>) -> SimState {
    match answer {
        Ok(PinStatus::Ready) => SimState::Ready,
        Ok(PinStatus::SimPin) => SimState::PinRequired,
        Ok(PinStatus::SimPuk) => SimState::PukRequired,
        Ok(PinStatus::Other(s)) if s.contains("NOT INSERTED") || s.contains("ABSENT") => {
            SimState::NotInserted
        }
        Ok(PinStatus::Other(s)) => SimState::Other(s.to_ascii_lowercase()),
        Err(
            DeviceError::Cme(CmeError::SimNotInserted) | DeviceError::Cms(CmsError::SimNotInserted),
        ) => SimState::NotInserted,
        Err(
            DeviceError::Cme(CmeError::SimPinRequired) | DeviceError::Cms(CmsError::SimPinRequired),
        ) => SimState::PinRequired,
        Err(
            DeviceError::Cme(CmeError::SimPukRequired) | DeviceError::Cms(CmsError::SimPukRequired),
        ) => SimState::PukRequired,
        Err(e) => SimState::Other(e.to_string()),
    }
}

async fn interrogate<P: AsyncRead + AsyncWrite + Unpin>(
    s: &mut AtSession<P>,
    opts: &DiagOptions,
    r: &mut PortReport,
) -> Result<(), LinkError> {
    let t = opts.command_timeout;
    // Numeric errors: the codes map to SIM states whatever language the firmware speaks.
    let _ = ask(s, &Cmee { mode: 1 }, t).await?;
    r.manufacturer = ask(s, &Cgmi, t).await?.ok();
    r.model = ask(s, &Cgmm, t).await?.ok();
    r.revision = ask(s, &Cgmr, t).await?.ok();
    let d: &'static Dialect = dialect::detect(
        r.manufacturer.as_deref().unwrap_or(""),
        r.model.as_deref().unwrap_or(""),
    );
    r.dialect = Some(d.name);
    r.pdu_required = d.message_format == 0;
    s.digester_mut().add_urcs(d.ignore_urcs.iter().copied());
    r.imei = ask(s, &Cgsn, t).await?.ok();
    let sim = sim_state(ask(s, &CpinQuery, t).await?);
    if sim != SimState::NotInserted {
        let mut iccid = ask(s, &ReadIccid(d.iccid), t).await?.ok();
        if iccid.is_none() && d.iccid != IccidCommand::Crsm {
            iccid = ask(s, &ReadIccid(IccidCommand::Crsm), t).await?.ok();
        }
        r.iccid = iccid;
    }
    if sim == SimState::Ready {
        r.imsi = ask(s, &Cimi, t).await?.ok();
        r.carrier = r.imsi.as_deref().map(|i| carrier_of_imsi(i).as_str());
    }
    r.sim = Some(sim);
    r.signal = ask(s, &Csq, t)
        .await?
        .ok()
        .map(|q| Signal::from_csq(q.rssi, q.ber));
    r.registration = registration(s, t).await?;
    r.operator = ask(s, &CopsQuery, t).await?.ok().and_then(|o| o.name);
    r.smsc = ask(s, &CscaQuery, t).await?.ok().flatten();
    r.pdu_mode = Some(ask(s, &Cmgf { mode: 0 }, t).await?.is_ok());
    r.storage = ask(s, &CpmsQuery, t).await?.unwrap_or_default();
    if let Some(to) = &opts.send_test {
        let ready =
            r.sim == Some(SimState::Ready) && r.registration.is_some_and(|g| g.is_registered());
        r.send_test = Some(if ready {
            send_test(s, d, to, opts).await
        } else {
            SendTestOutcome {
                to: crate::number::mask(to),
                mr: None,
                error: Some("not sent: the modem is not ready (see the verdict)".into()),
                class: None,
            }
        });
    }
    Ok(())
}

/// Circuit-switched registration (+CREG), or, when that says "not registered", EPS or packet
/// registration (+CEREG/+CGREG): LTE-only modules carry SMS over SGs or IMS and may leave
/// +CREG at 0 while +CEREG says home. A modem that knows none of them gives None.
async fn registration<P: AsyncRead + AsyncWrite + Unpin>(
    s: &mut AtSession<P>,
    t: Duration,
) -> Result<Option<RegStatus>, LinkError> {
    let mut first = None;
    for kind in [RegKind::Cs, RegKind::Eps, RegKind::Gprs] {
        if let Ok(reg) = ask(s, &RegQuery(kind), t).await? {
            if reg.stat.is_registered() {
                return Ok(Some(reg.stat));
            }
            first.get_or_insert(reg.stat);
        }
    }
    Ok(first)
}

/// Sends [`TEST_TEXT`] to `to` the way the driver would (the dialect's init strings, message
/// format and send command), and waits for the TP-MR or the modem's error.
async fn send_test<P: AsyncRead + AsyncWrite + Unpin>(
    s: &mut AtSession<P>,
    d: &'static Dialect,
    to: &str,
    opts: &DiagOptions,
) -> SendTestOutcome {
    let mut out = SendTestOutcome {
        to: crate::number::mask(to),
        mr: None,
        error: None,
        class: None,
    };
    match send_test_inner(s, d, to, opts).await {
        Ok(Ok(mr)) => out.mr = Some(mr),
        Ok(Err(e)) => {
            out.class = Some(class_name(&e).to_string());
            out.error = Some(e.to_string());
        }
        Err(e) => {
            out.class = Some("link".to_string());
            out.error = Some(e.to_string());
        }
    }
    out
}

fn class_name(e: &DeviceError) -> &'static str {
    use crate::at::ErrorClass::*;
    match e.class() {
        PermanentForMessage => "permanent_for_message",
        TransientForModem => "transient_for_modem",
        SimOrRegistration => "sim_or_registration",
        Ambiguous => "ambiguous",
    }
}

async fn send_test_inner<P: AsyncRead + AsyncWrite + Unpin>(
    s: &mut AtSession<P>,
    d: &'static Dialect,
    to: &str,
    opts: &DiagOptions,
) -> Result<Result<u8, DeviceError>, LinkError> {
    let t = opts.command_timeout;
    let recipient = match Address::parse_number(to) {
        Ok(a) => a,
        Err(e) => return Ok(Err(DeviceError::Unsupported(e.to_string()))),
    };
    let parts = match encode_submit(&SubmitOptions::new(recipient), TEST_TEXT) {
        Ok(p) => p,
        Err(e) => return Ok(Err(DeviceError::Unsupported(e.to_string()))),
    };
    let Some(part) = parts.first() else {
        return Ok(Err(DeviceError::Unsupported("nothing to send".into())));
    };
    for line in d.init {
        let _ = ask(s, &Raw::new(*line), t).await?;
    }
    if let Err(e) = ask(
        s,
        &Cmgf {
            mode: d.message_format,
        },
        t,
    )
    .await?
    {
        return Ok(Err(e));
    }
    let Ok(length) = u16::try_from(part.cmgs_length) else {
        return Ok(Err(DeviceError::Unsupported("PDU too long".into())));
    };
    // Encoded for the dialect exactly as the daemon's send path does.
    match encode_part_for(d, &part.hex(), length) {
        Err(e) => Ok(Err(DeviceError::Unsupported(e))),
        Ok(Wire::Pdu { pdu_hex, length }) => {
            s.send_with_timeout(&Cmgs { length, pdu_hex }, opts.send_timeout)
                .await
        }
        Ok(Wire::Text(part)) => s.send_hcmgs(part, opts.send_timeout).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cpms_query_reply_is_parsed() {
        // Reply format of TS 27.005 §3.2.2 as a SIM800 prints it.
        let got = CpmsQuery
            .parse(&lines(&["+CPMS: \"SM\",3,30,\"SM\",3,30,\"ME\",0,100"]))
            .unwrap();
        assert_eq!(
            got,
            vec![
                Storage {
                    mem: "SM".into(),
                    used: 3,
                    total: 30
                },
                Storage {
                    mem: "SM".into(),
                    used: 3,
                    total: 30
                },
                Storage {
                    mem: "ME".into(),
                    used: 0,
                    total: 100
                },
            ]
        );
        assert!(CpmsQuery.parse(&lines(&["+CPMS: 3,30,3,30"])).is_err());
        assert!(CpmsQuery.parse(&lines(&[])).is_err());
        assert!(CpmsQuery.parse(&lines(&["+CPMS: \"SM\",x,30"])).is_err());
    }

    #[test]
    fn sim_states_from_answers_and_errors() {
        assert_eq!(sim_state(Ok(PinStatus::Ready)), SimState::Ready);
        assert_eq!(
            sim_state(Err(DeviceError::Cme(CmeError::from_code(10)))),
            SimState::NotInserted
        );
        assert_eq!(
            sim_state(Err(DeviceError::Cms(CmsError::from_code(311)))),
            SimState::PinRequired
        );
        assert_eq!(
            sim_state(Ok(PinStatus::Other("NOT INSERTED".into()))),
            SimState::NotInserted
        );
        assert_eq!(
            sim_state(Err(DeviceError::Error)),
            SimState::Other("ERROR".into())
        );
    }

    /// A scripted modem on the other end of a duplex pipe: each command line gets `answer`'s
    /// reply (information lines then OK, or a final error).
    fn scripted(answer: fn(&str) -> &'static str) -> tokio::io::DuplexStream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 256];
            while let Ok(n) = theirs.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(pos) = buf.iter().position(|&b| b == b'\r') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let cmd = String::from_utf8_lossy(&line).trim().to_string();
                    let reply = answer(&cmd);
                    if theirs.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        });
        ours
    }

    #[tokio::test]
    async fn lte_only_registration_is_found_on_cereg() {
        // An LTE module carrying SMS over IMS: +CREG says not registered, +CEREG says home.
        let io = scripted(|cmd| match cmd {
            "AT+CREG?" => "\r\n+CREG: 0,0\r\n\r\nOK\r\n",
            "AT+CEREG?" => "\r\n+CEREG: 0,1\r\n\r\nOK\r\n",
            _ => "\r\nERROR\r\n",
        });
        let mut s = AtSession::new(io, Digester::new());
        let got = registration(&mut s, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got, Some(RegStatus::Home));

        // Nothing registered anywhere: the first answer (+CREG's) is kept.
        let io = scripted(|cmd| match cmd {
            "AT+CREG?" => "\r\n+CREG: 0,2\r\n\r\nOK\r\n",
            "AT+CEREG?" => "\r\n+CEREG: 0,4\r\n\r\nOK\r\n",
            _ => "\r\nERROR\r\n",
        });
        let mut s = AtSession::new(io, Digester::new());
        let got = registration(&mut s, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got, Some(RegStatus::Searching));
    }

    proptest::proptest! {
        #[test]
        fn cpms_parser_never_panics(line in "\\PC{0,80}") {
            let _ = CpmsQuery.parse(&[line]);
        }
    }
}
