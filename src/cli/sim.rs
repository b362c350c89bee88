//! `smsgate sim` (run a virtual modem bank until Ctrl-C / SIGTERM) and `smsgate sim ctl`
//! (talk to a running one over DIR/ctl.sock). A thin layer over [`crate::sim`]: parse, call,
//! print. `sim` prints one line per port once every port answers, then "ready".

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::BadInput;
use crate::sim::{
    self, Bank, Control, DialectChoice, FailMode, IsmgConfig, IsmgControl, SimConfig,
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    #[command(subcommand)]
    pub ctl: Option<SimCommand>,
    /// Number of virtual modems.
    #[arg(long, default_value_t = 1)]
    pub modems: usize,
    /// Directory for the modemN links, events.jsonl and ctl.sock.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// generic, huawei, zte, quectel, simcom, wavecom, phs, or mixed.
    #[arg(long, default_value = "generic")]
    pub dialect: String,
    /// Network time of AT+CMGS ("800ms", "2s", "0").
    #[arg(long, default_value = "800ms")]
    pub latency: String,
    /// Time from +CMGS to the status report.
    #[arg(long, default_value = "1s")]
    pub report_delay: String,
    /// Seed for identities and random faults (reproducible banks).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Modems that also expose a second AT port DIR/modemN-at2 (same SIM), e.g. `0,2`.
    #[arg(long, value_delimiter = ',')]
    pub second_port: Vec<usize>,
    /// Also run a virtual CMPP gateway (ISMG) on this TCP address, e.g. 127.0.0.1:7890
    /// (port 0 picks one; the banner says which). `--modems 0` runs the gateway alone.
    #[arg(long)]
    pub cmpp: Option<std::net::SocketAddr>,
    /// The SP id a CMPP login must carry.
    #[arg(long, default_value = "901234")]
    pub cmpp_sp_id: String,
    /// The shared secret of the CMPP login.
    #[arg(long, default_value = "secret")]
    pub cmpp_secret: String,
    /// The highest CMPP version the gateway speaks: 3.0, or 2.0 (a 3.0 login then gets
    /// status 4, version too high).
    #[arg(long, default_value = "3.0")]
    pub cmpp_version: String,
    /// Unanswered SUBMITs the gateway allows per link.
    #[arg(long, default_value_t = 16)]
    pub cmpp_window: usize,
    /// Time from a SUBMIT to its SUBMIT_RESP.
    #[arg(long, default_value = "0")]
    pub cmpp_latency: String,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Control a running bank.
    Ctl(CtlArgs),
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The directory the bank was started with.
    #[arg(long)]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub cmd: CtlCommand,
}

#[derive(Debug, Args)]
pub struct ModemArg {
    #[arg(long)]
    pub modem: usize,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Deliver an SMS to a modem (+CMT or +CMTI as the client's +CNMI asks).
    Inject {
        #[command(flatten)]
        m: ModemArg,
        #[arg(long)]
        from: String,
        #[arg(long)]
        text: String,
    },
    /// Set the AT+CMGS network time, e.g. `latency --modem 0 2s`.
    Latency {
        #[command(flatten)]
        m: ModemArg,
        value: String,
    },
    /// Make submits fail with +CMS ERROR: CMS (always unless --once/--times/--rate).
    Fail {
        #[command(flatten)]
        m: ModemArg,
        #[arg(long)]
        cms: u16,
        #[arg(long, conflicts_with_all = ["times", "rate"])]
        once: bool,
        #[arg(long, conflicts_with = "rate")]
        times: Option<u32>,
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Stop answering (for a while, or until `recover`).
    Hang {
        #[command(flatten)]
        m: ModemArg,
        #[arg(long = "for")]
        duration: Option<String>,
    },
    /// Send line noise.
    Garbage {
        #[command(flatten)]
        m: ModemArg,
    },
    /// Close the port and come back on a new pty after a while (default 5s).
    Unplug {
        #[command(flatten)]
        m: ModemArg,
        #[arg(long = "for")]
        duration: Option<String>,
        /// Arm it instead: the next submit reaches the network, then the port vanishes
        /// before its +CMGS: answer.
        #[arg(long)]
        after_submit: bool,
    },
    /// Hold back the next submit's answer: `late --modem 0 --by 3s` (the part is sent).
    Late {
        #[command(flatten)]
        m: ModemArg,
        #[arg(long)]
        by: String,
    },
    /// The modem resets by itself: deaf a while (default 300ms), then RDY/+CPIN: READY with
    /// power-on settings (echo on, text mode, +CNMI reset).
    Reboot {
        #[command(flatten)]
        m: ModemArg,
        #[arg(long = "for")]
        duration: Option<String>,
    },
    /// Pull the SIM (+CME ERROR: 10 from then on).
    SimRemove {
        #[command(flatten)]
        m: ModemArg,
    },
    /// Put the SIM back.
    SimInsert {
        #[command(flatten)]
        m: ModemArg,
    },
    /// Lose or regain network registration: `network --modem 0 lost|back`.
    Network {
        #[command(flatten)]
        m: ModemArg,
        state: String,
    },
    /// SIM storage full (+CMS ERROR: 322 on store); --off clears it.
    MemoryFull {
        #[command(flatten)]
        m: ModemArg,
        #[arg(long)]
        off: bool,
    },
    /// Turn a quirk on or off: `quirk --modem 0 smsc-drop on|off`.
    Quirk {
        #[command(flatten)]
        m: ModemArg,
        quirk: String,
        state: String,
    },
    /// TP-Status of the next status reports: `report-status --modem 0 0x46` (0x00 = delivered).
    ReportStatus {
        #[command(flatten)]
        m: ModemArg,
        status: String,
    },
    /// Clear every fault of a modem.
    Recover {
        #[command(flatten)]
        m: ModemArg,
    },
    /// Modems with identities, state and counters.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// CMPP gateway: an MO message, e.g. `cmpp-mo --from 13912345678 --to 106901234542 --text TD`.
    CmppMo {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        text: String,
    },
    /// CMPP gateway: answer SUBMITs with result 8 (flow control) at a rate 0..1 (0 = off).
    CmppFlowControl {
        #[arg(long)]
        rate: f64,
    },
    /// CMPP gateway: refuse every login as a wrong password (status 3): `on` or `off`.
    CmppAuthFail { state: String },
    /// CMPP gateway: close every link now.
    CmppDrop,
    /// CMPP gateway: answer nothing (input swallowed): `on` or `off`.
    CmppSilence { state: String },
    /// CMPP gateway: status reports before their SUBMIT_RESP: `on` or `off`.
    CmppReportsFirst { state: String },
    /// CMPP gateway: 60-byte (2.0) reports on 3.0 links too: `on` or `off`.
    CmppShortReports { state: String },
    /// CMPP gateway: clear every fault.
    CmppRecover,
    /// CMPP gateway: links, counters and faults (JSON).
    CmppStatus,
}

fn on_off(state: &str) -> Result<bool, BadInput> {
    match state {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(BadInput(format!("{other:?}: expected on or off"))),
    }
}

/// "800ms", "2s", "1.5s", "1m", "0" -> Duration.
pub fn parse_duration(s: &str) -> Result<Duration, BadInput> {
    let s = s.trim();
    let bad = || {
        BadInput(format!(
            "bad duration {s:?} (expected e.g. 800ms, 2s, 1m, 0)"
        ))
    };
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (
            s,
            if s.trim_start_matches('0').is_empty() {
                "s"
            } else {
                ""
            },
        ),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" | "min" => v * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("start tokio")?;
    match args.ctl {
        Some(SimCommand::Ctl(ctl)) => rt.block_on(run_ctl(ctl)),
        None => rt.block_on(run_bank(args)),
    }
}

async fn run_bank(args: SimArgs) -> anyhow::Result<()> {
    let dir = args
        .dir
        .ok_or_else(|| BadInput("smsgate sim needs --dir DIR".into()))?;
    if (args.modems == 0 && args.cmpp.is_none()) || args.modems > 512 {
        return Err(BadInput(format!(
            "--modems {} out of range 1..=512 (0 only with --cmpp)",
            args.modems
        ))
        .into());
    }
    let dialect: DialectChoice = args
        .dialect
        .parse()
        .map_err(|e: sim::dialect::UnknownDialect| BadInput(e.to_string()))?;
    let mut cfg = SimConfig::new(args.modems, dir);
    cfg.dialect = dialect;
    cfg.latency = parse_duration(&args.latency)?;
    cfg.report_delay = parse_duration(&args.report_delay)?;
    cfg.seed = args.seed;
    if let Some(&i) = args.second_port.iter().find(|&&i| i >= args.modems) {
        return Err(BadInput(format!(
            "--second-port {i}: no such modem (0..{})",
            args.modems
        ))
        .into());
    }
    cfg.second_port = args.second_port;
    if let Some(listen) = args.cmpp {
        let mut c = IsmgConfig::new(listen, &args.cmpp_sp_id, args.cmpp_secret.as_bytes());
        c.max_version = match args.cmpp_version.as_str() {
            "3.0" | "3" | "cmpp3" => crate::cmpp::Version::V30,
            "2.0" | "2" | "cmpp2" => crate::cmpp::Version::V20,
            other => {
                return Err(
                    BadInput(format!("--cmpp-version {other:?}: expected 3.0 or 2.0")).into(),
                )
            }
        };
        if args.cmpp_sp_id.len() > 6 {
            return Err(BadInput("--cmpp-sp-id: at most 6 characters".into()).into());
        }
        c.window = args.cmpp_window;
        c.latency = parse_duration(&args.cmpp_latency)?;
        c.report_delay = cfg.report_delay;
        cfg.cmpp = Some(c);
    }
    let bank = Bank::start(cfg)
        .await
        .context("start the virtual modem bank")?;
    let status = bank.control(Control::Status).await?;
    for m in &status.modems {
        println!(
            "modem{} {} {} imei {} imsi {}",
            m.index, m.port, m.dialect, m.imei, m.imsi
        );
        if let Some(second) = &m.second_port {
            println!("modem{} {second} second AT port", m.index);
        }
    }
    if let Some(addr) = bank.cmpp_addr() {
        println!("cmpp {addr}");
    }
    println!("ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("signal handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    bank.shutdown().await;
    Ok(())
}

fn ms(s: &str) -> Result<u64, BadInput> {
    parse_duration(s).map(|d| d.as_millis() as u64)
}

async fn run_ctl(args: CtlArgs) -> anyhow::Result<()> {
    use CtlCommand as C;
    let json_status = matches!(args.cmd, C::Status { json: true });
    let cmd = match args.cmd {
        C::Inject { m, from, text } => Control::Inject {
            modem: m.modem,
            from,
            text,
        },
        C::Latency { m, value } => Control::Latency {
            modem: m.modem,
            ms: ms(&value)?,
        },
        C::Fail {
            m,
            cms,
            once,
            times,
            rate,
        } => {
            let mode = match (once, times, rate) {
                (true, _, _) => FailMode::Once,
                (_, Some(n), _) => FailMode::Times(n),
                (_, _, Some(p)) if (0.0..=1.0).contains(&p) => FailMode::Rate(p),
                (_, _, Some(p)) => return Err(BadInput(format!("--rate {p} outside 0..=1")).into()),
                _ => FailMode::Always,
            };
            Control::Fail {
                modem: m.modem,
                cms,
                mode,
            }
        }
        C::Hang { m, duration } => Control::Hang {
            modem: m.modem,
            for_ms: duration.as_deref().map(ms).transpose()?,
        },
        C::Garbage { m } => Control::Garbage { modem: m.modem },
        C::Unplug {
            m,
            duration,
            after_submit,
        } => Control::Unplug {
            modem: m.modem,
            for_ms: duration.as_deref().map(ms).transpose()?,
            after_submit,
        },
        C::Late { m, by } => Control::Late {
            modem: m.modem,
            ms: ms(&by)?,
        },
        C::Reboot { m, duration } => Control::Reboot {
            modem: m.modem,
            for_ms: duration.as_deref().map(ms).transpose()?,
        },
        C::SimRemove { m } => Control::SimRemove { modem: m.modem },
        C::SimInsert { m } => Control::SimInsert { modem: m.modem },
        C::Network { m, state } => Control::Network {
            modem: m.modem,
            up: match state.as_str() {
                "back" | "up" => true,
                "lost" | "down" => false,
                other => {
                    return Err(
                        BadInput(format!("network state {other:?}: expected lost or back")).into(),
                    )
                }
            },
        },
        C::MemoryFull { m, off } => Control::MemoryFull {
            modem: m.modem,
            full: !off,
        },
        C::Quirk { m, quirk, state } => Control::Quirk {
            modem: m.modem,
            quirk: quirk.parse().map_err(BadInput)?,
            on: match state.as_str() {
                "on" => true,
                "off" => false,
                other => {
                    return Err(
                        BadInput(format!("quirk state {other:?}: expected on or off")).into(),
                    )
                }
            },
        },
        C::ReportStatus { m, status } => {
            let parsed = match status
                .strip_prefix("0x")
                .or_else(|| status.strip_prefix("0X"))
            {
                Some(h) => u8::from_str_radix(h, 16),
                None => status.parse::<u8>(),
            };
            Control::ReportStatus {
                modem: m.modem,
                status: parsed.map_err(|_| {
                    BadInput(format!(
                        "TP-Status {status:?}: expected 0-255 or 0x00-0xFF (e.g. 0x46)"
                    ))
                })?,
            }
        }
        C::Recover { m } => Control::Recover { modem: m.modem },
        C::Status { .. } => Control::Status,
        C::CmppMo { from, to, text } => Control::Cmpp(IsmgControl::Mo { from, to, text }),
        C::CmppFlowControl { rate } => {
            if !(0.0..=1.0).contains(&rate) {
                return Err(BadInput(format!("--rate {rate} outside 0..=1")).into());
            }
            Control::Cmpp(IsmgControl::FlowControl { rate })
        }
        C::CmppAuthFail { state } => Control::Cmpp(IsmgControl::AuthFail {
            on: on_off(&state)?,
        }),
        C::CmppDrop => Control::Cmpp(IsmgControl::Drop),
        C::CmppSilence { state } => Control::Cmpp(IsmgControl::Silence {
            on: on_off(&state)?,
        }),
        C::CmppReportsFirst { state } => Control::Cmpp(IsmgControl::ReportsFirst {
            on: on_off(&state)?,
        }),
        C::CmppShortReports { state } => Control::Cmpp(IsmgControl::ShortReports {
            on: on_off(&state)?,
        }),
        C::CmppRecover => Control::Cmpp(IsmgControl::Recover),
        C::CmppStatus => Control::Cmpp(IsmgControl::Status),
    };
    let reply = sim::control::request(&args.dir, &cmd)
        .await
        .context("is `smsgate sim` running with this --dir?")?;
    if !reply.ok {
        anyhow::bail!("{}", reply.error.unwrap_or_else(|| "refused".into()));
    }
    if matches!(cmd, Control::Cmpp(IsmgControl::Status)) {
        println!("{}", serde_json::to_string_pretty(&reply.gateway)?);
    } else if json_status {
        println!("{}", serde_json::to_string_pretty(&reply.modems)?);
    } else if matches!(cmd, Control::Status) {
        for m in &reply.modems {
            println!(
                "modem{} {:8} {:12} imei {} imsi {} sent {} failed {} inbound {} storage {}/{}",
                m.index,
                m.dialect,
                m.state,
                m.imei,
                m.imsi,
                m.counters.submitted,
                m.counters.failed,
                m.counters.inbound,
                m.storage_used,
                m.storage_capacity
            );
        }
    } else {
        println!("ok");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("800ms").unwrap(), Duration::from_millis(800));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
