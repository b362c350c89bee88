//! `smsgate diag [PORT ...] [--json] [--trace] [--send-test NUMBER]`: the technician's probe.
//! A thin layer over [`crate::diag`]: parse, probe every port concurrently, print a table (or
//! one JSON object per port in an array), and exit 0 when every port is healthy, 1 when any
//! has a problem, 2 on bad arguments. No daemon needed.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::Args;

use super::sim::parse_duration;
use super::BadInput;
use crate::diag::{self, DiagOptions, PortReport, Status};

#[derive(Debug, Args)]
pub struct DiagArgs {
    /// Ports to probe; default: every /dev/ttyUSB*, /dev/ttyACM*, /dev/gsm/*.
    pub ports: Vec<PathBuf>,
    /// One JSON array, one object per port (keys in README, "smsgate diag").
    #[arg(long)]
    pub json: bool,
    /// Print the AT exchange (both directions, timestamps, CR/LF made visible).
    #[arg(long)]
    pub trace: bool,
    /// Send one test SMS to NUMBER from the named PORT (exactly one PORT must be named).
    #[arg(long, value_name = "NUMBER")]
    pub send_test: Option<String>,
    /// How long to wait for an answer at each baud rate.
    #[arg(long, default_value = "600ms")]
    pub probe_timeout: String,
    /// Check a carrier gateway instead (106 numbers): CMPP login and ACTIVE_TEST at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["ports", "send_test", "trace"])]
    pub cmpp: Option<String>,
    /// With --cmpp: the SP id.
    #[arg(long, requires = "cmpp")]
    pub sp_id: Option<String>,
    /// With --cmpp: the file holding the shared secret (mode 0600 or 0640).
    #[arg(long, requires = "cmpp")]
    pub secret_file: Option<PathBuf>,
    /// With --cmpp: log in with CMPP 2.0 only.
    #[arg(long, requires = "cmpp")]
    pub cmpp2: bool,
}

pub fn run(args: DiagArgs) -> anyhow::Result<()> {
    if let Some(address) = &args.cmpp {
        let (Some(sp_id), Some(secret)) = (&args.sp_id, &args.secret_file) else {
            return Err(BadInput("--cmpp needs --sp-id and --secret-file".into()).into());
        };
        return super::diag_cmpp::run(address, sp_id, secret, args.cmpp2, args.json);
    }
    let mut opts = DiagOptions {
        trace: args.trace,
        probe_timeout: parse_duration(&args.probe_timeout)?,
        ..DiagOptions::default()
    };
    if let Some(to) = &args.send_test {
        if args.ports.len() != 1 {
            return Err(
                BadInput("--send-test sends from one port: name exactly one PORT".into()).into(),
            );
        }
        crate::number::parse(to)
            .map_err(|e| BadInput(format!("--send-test {}: {e}", crate::number::mask(to))))?;
        opts.send_test = Some(to.clone());
    }
    let ports = if args.ports.is_empty() {
        diag::default_ports()
    } else {
        args.ports
    };
    if ports.is_empty() {
        return Err(anyhow!(
            "no serial ports found ({}): plug a modem in or name a PORT",
            diag::DEFAULT_PATTERNS.join(", ")
        ));
    }
    let rt = tokio::runtime::Runtime::new().context("start tokio")?;
    let reports = rt.block_on(diag::diagnose(&ports, &opts));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", render(&reports, args.trace));
    }
    let bad = reports
        .iter()
        .filter(|r| r.verdict.status == Status::Problem)
        .count();
    if bad > 0 {
        return Err(anyhow!(
            "{bad} of {} port(s) have a problem (see the verdicts)",
            reports.len()
        ));
    }
    Ok(())
}

fn or_dash(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("-")
}

/// The people's view: a summary table, then each port's details (and its trace).
pub fn render(reports: &[PortReport], trace: bool) -> String {
    let mut rows = vec![[
        "PORT".to_string(),
        "BAUD".into(),
        "DIALECT".into(),
        "SIM".into(),
        "CARRIER".into(),
        "SIGNAL".into(),
        "NETWORK".into(),
        "VERDICT".into(),
    ]];
    for r in reports {
        rows.push([
            r.port.clone(),
            r.baud.map_or("-".into(), |b| b.to_string()),
            or_dash(r.dialect).to_string(),
            or_dash(r.sim.as_ref().map(|s| s.as_str())).to_string(),
            or_dash(r.carrier).to_string(),
            r.signal.map_or("-".into(), |s| {
                format!(
                    "{} ({}/5)",
                    s.dbm_text(),
                    s.bars.map_or("?".into(), |b| b.to_string())
                )
            }),
            r.registration.map_or("-".into(), diag::registration_name),
            format!("{}: {}", status_word(r.verdict.status), r.verdict.hint),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for r in reports {
        out.push('\n');
        let _ = writeln!(out, "{} ({})", r.port, or_dash(r.device.as_deref()));
        if !r.holders.is_empty() {
            let names: Vec<String> = r
                .holders
                .iter()
                .map(|h| format!("{} (pid {})", h.name, h.pid))
                .collect();
            let _ = writeln!(out, "  held by    {}", names.join(", "));
        }
        if r.answered {
            let _ = writeln!(
                out,
                "  modem      {} {} rev {} (dialect {})",
                or_dash(r.manufacturer.as_deref()),
                or_dash(r.model.as_deref()),
                or_dash(r.revision.as_deref()),
                or_dash(r.dialect)
            );
            let _ = writeln!(out, "  IMEI       {}", or_dash(r.imei.as_deref()));
            let _ = writeln!(
                out,
                "  SIM        {}  IMSI {} ({})  ICCID {}",
                or_dash(r.sim.as_ref().map(|s| s.as_str())),
                or_dash(r.imsi.as_deref()),
                or_dash(r.carrier),
                or_dash(r.iccid.as_deref())
            );
            let _ = writeln!(
                out,
                "  network    {}  operator {}  SMSC {}",
                r.registration.map_or("-".into(), diag::registration_name),
                or_dash(r.operator.as_deref()),
                or_dash(r.smsc.as_deref())
            );
            let storage: Vec<String> = r
                .storage
                .iter()
                .map(|s| format!("{} {}/{}", s.mem, s.used, s.total))
                .collect();
            let _ = writeln!(
                out,
                "  PDU mode   {}  storage {}",
                match r.pdu_mode {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                },
                if storage.is_empty() {
                    "-".to_string()
                } else {
                    storage.join(", ")
                }
            );
        }
        if let Some(t) = &r.send_test {
            let _ = match t.mr {
                Some(mr) => writeln!(out, "  test SMS   to {}: sent, TP-MR {mr}", t.to),
                None => writeln!(
                    out,
                    "  test SMS   to {}: {} ({})",
                    t.to,
                    or_dash(t.error.as_deref()),
                    or_dash(t.class.as_deref())
                ),
            };
        }
        let _ = writeln!(
            out,
            "  verdict    {}: {} [{}, {} ms]",
            status_word(r.verdict.status),
            r.verdict.hint,
            r.verdict.code,
            r.elapsed_ms
        );
        if trace {
            for e in &r.trace {
                let _ = writeln!(out, "    {}", e.line());
            }
        }
    }
    out
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warning => "WARNING",
        Status::Problem => "PROBLEM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::at::RegStatus;
    use crate::diag::{judge, Holder, Signal, SimState, Storage};

    #[test]
    fn table_golden() {
        let mut ok = PortReport {
            port: "/dev/ttyUSB0".into(),
            device: Some("/dev/ttyUSB0".into()),
            answered: true,
            baud: Some(115_200),
            manufacturer: Some("huawei".into()),
            model: Some("E1750".into()),
            revision: Some("11.126".into()),
            dialect: Some("huawei"),
            imei: Some("863525000111049".into()),
            imsi: Some("460010001586785".into()),
            carrier: Some("china_unicom"),
            iccid: Some("89860176700012024976".into()),
            sim: Some(SimState::Ready),
            signal: Some(Signal::from_csq(20, 99)),
            registration: Some(RegStatus::Home),
            operator: Some("CHN-UNICOM".into()),
            smsc: Some("+8613010112500".into()),
            pdu_mode: Some(true),
            pdu_required: true,
            storage: vec![Storage {
                mem: "SM".into(),
                used: 2,
                total: 30,
            }],
            elapsed_ms: 41,
            ..PortReport::default()
        };
        ok.verdict = judge(&ok);
        let mut held = PortReport {
            port: "/dev/ttyUSB1".into(),
            device: Some("/dev/ttyUSB1".into()),
            busy: true,
            holders: vec![Holder {
                pid: 812,
                name: "ModemManager".into(),
            }],
            elapsed_ms: 1,
            ..PortReport::default()
        };
        held.verdict = judge(&held);
        let want = "\
PORT          BAUD    DIALECT  SIM    CARRIER       SIGNAL         NETWORK  VERDICT
/dev/ttyUSB0  115200  huawei   ready  china_unicom  -73 dBm (4/5)  home     OK: ready to send
/dev/ttyUSB1  -       -        -      -             -              -        PROBLEM: port held by another process: ModemManager (pid 812); stop ModemManager or tag the port ID_MM_DEVICE_IGNORE=1 (udev)

/dev/ttyUSB0 (/dev/ttyUSB0)
  modem      huawei E1750 rev 11.126 (dialect huawei)
  IMEI       863525000111049
  SIM        ready  IMSI 460010001586785 (china_unicom)  ICCID 89860176700012024976
  network    home  operator CHN-UNICOM  SMSC +8613010112500
  PDU mode   yes  storage SM 2/30
  verdict    OK: ready to send [ok, 41 ms]

/dev/ttyUSB1 (/dev/ttyUSB1)
  held by    ModemManager (pid 812)
  verdict    PROBLEM: port held by another process: ModemManager (pid 812); stop ModemManager or tag the port ID_MM_DEVICE_IGNORE=1 (udev) [port_held, 1 ms]
";
        assert_eq!(render(&[ok, held], false), want);
    }
}
