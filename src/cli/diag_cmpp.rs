//! `smsgate diag --cmpp HOST:PORT --sp-id ID --secret-file FILE`: the technician's check of a
//! carrier gateway link (issue 12) before it goes into `[[gateways]]`: TCP connect, CMPP login
//! (3.0, and 2.0 when the gateway says the version is too high), ACTIVE_TEST, TERMINATE, each
//! step bounded, then one verdict line. What must always hold: the secret is read from a file
//! of mode 0600/0640 (the daemon's rule) and never printed; every wait is bounded; no input
//! from the gateway panics (the codec's framer reads it).

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cmpp::{self, Body, Connect, Pdu, Version};

/// Bound on each step (connect, each answer).
const STEP: Duration = Duration::from_secs(10);

/// What the probe found, step by step; `ok` is the verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CmppReport {
    pub address: String,
    pub steps: Vec<String>,
    pub version: Option<String>,
    pub ok: bool,
    pub verdict: String,
}

/// Runs the probe and prints its report (JSON with `json`); Err when the link is not usable.
pub fn run(
    address: &str,
    sp_id: &str,
    secret_file: &std::path::Path,
    v2: bool,
    json: bool,
) -> anyhow::Result<()> {
    let entry = crate::config::GatewayEntry {
        secret_file: secret_file.to_path_buf(),
        ..Default::default()
    };
    let secret = entry
        .read_secret()
        .map_err(|e| super::BadInput(e.to_string()))?;
    if sp_id.is_empty() || sp_id.len() > 6 {
        return Err(super::BadInput("--sp-id: the SP id is 1 to 6 characters".into()).into());
    }
    let rt = tokio::runtime::Runtime::new().context("start tokio")?;
    let report = rt.block_on(probe(address, sp_id, secret.as_bytes(), v2));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("CMPP gateway {}", report.address);
        for s in &report.steps {
            println!("  {s}");
        }
        println!("verdict: {}", report.verdict);
    }
    if report.ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the gateway link is not usable: {}",
            report.verdict
        ))
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    version: Version,
}

impl Conn {
    async fn send(&mut self, pdu: Pdu) -> anyhow::Result<()> {
        let bytes = pdu.emit(self.version).map_err(|e| anyhow!("{e}"))?;
        tokio::time::timeout(STEP, self.stream.write_all(&bytes))
            .await
            .map_err(|_| anyhow!("write timed out"))??;
        Ok(())
    }

    /// The next PDU, answering the gateway's ACTIVE_TESTs meanwhile.
    async fn recv(&mut self) -> anyhow::Result<Pdu> {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let (pdu, used) = cmpp::decode(&self.buf, self.version).map_err(|e| anyhow!("{e}"))?;
            if let Some(p) = pdu {
                self.buf.drain(..used);
                if matches!(p.body, Body::ActiveTest) {
                    self.send(Pdu::new(p.sequence_id, Body::ActiveTestResp(Some(0))))
                        .await?;
                    continue;
                }
                return Ok(p);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| anyhow!("no answer within {STEP:?}"))??;
            if n == 0 {
                return Err(anyhow!("the gateway closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn now_timestamp() -> u32 {
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system());
    cmpp::timestamp(
        now.month() as u8,
        now.day() as u8,
        now.hour() as u8,
        now.minute() as u8,
        now.second() as u8,
    )
}

async fn login(
    address: &str,
    sp_id: &str,
    secret: &[u8],
    version: Version,
    steps: &mut Vec<String>,
) -> Result<Conn, (u32, String)> {
    let t = Instant::now();
    let stream = match tokio::time::timeout(STEP, TcpStream::connect(address)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err((u32::MAX, format!("cannot connect: {e}"))),
        Err(_) => return Err((u32::MAX, format!("no TCP answer within {STEP:?}"))),
    };
    steps.push(format!("TCP connected in {} ms", t.elapsed().as_millis()));
    let mut c = Conn {
        stream,
        buf: Vec::new(),
        version,
    };
    let vbyte = match version {
        Version::V30 => 0x30,
        Version::V20 => 0x20,
    };
    let t = Instant::now();
    let connect = Connect::new(sp_id.as_bytes(), secret, now_timestamp(), vbyte);
    if let Err(e) = c.send(Pdu::new(1, Body::Connect(connect))).await {
        return Err((u32::MAX, format!("CONNECT not sent: {e}")));
    }
    match c.recv().await {
        Ok(Pdu {
            body: Body::ConnectResp(r),
            ..
        }) => {
            if r.status == 0 {
                steps.push(format!(
                    "login accepted (CMPP {}) in {} ms",
                    if version == Version::V30 {
                        "3.0"
                    } else {
                        "2.0"
                    },
                    t.elapsed().as_millis()
                ));
                Ok(c)
            } else {
                Err((r.status, format!("login refused: status {}", r.status)))
            }
        }
        Ok(other) => Err((
            u32::MAX,
            format!(
                "unexpected answer to CONNECT: {:?}",
                other.body.command_id()
            ),
        )),
        Err(e) => Err((u32::MAX, format!("no CONNECT_RESP: {e}"))),
    }
}

/// The probe itself (no printing).
pub async fn probe(address: &str, sp_id: &str, secret: &[u8], v2_only: bool) -> CmppReport {
    let mut steps = Vec::new();
    let mut version = if v2_only { Version::V20 } else { Version::V30 };
    let mut conn = login(address, sp_id, secret, version, &mut steps).await;
    if matches!(conn, Err((4, _))) && version == Version::V30 {
        steps.push("the gateway says 3.0 is too high (status 4): trying 2.0".into());
        version = Version::V20;
        conn = login(address, sp_id, secret, version, &mut steps).await;
    }
    let fail = |steps: Vec<String>, verdict: String| CmppReport {
        address: address.to_string(),
        steps,
        version: None,
        ok: false,
        verdict,
    };
    let mut c = match conn {
        Ok(c) => c,
        Err((status, why)) => {
            steps.push(why.clone());
            let verdict = match status {
                2 => "the gateway does not know this SP id (status 2): check sp_id".to_string(),
                3 => "authentication failed (status 3): check the secret and sp_id (and this machine's clock)".to_string(),
                4 => "the gateway refuses both CMPP versions (status 4)".to_string(),
                u32::MAX => format!("{why}: check the address, the firewall and that the gateway allows this IP"),
                s => format!("login refused with status {s}"),
            };
            return fail(steps, verdict);
        }
    };
    let t = Instant::now();
    let tested = async {
        c.send(Pdu::new(2, Body::ActiveTest)).await?;
        loop {
            let p = c.recv().await?;
            if matches!(p.body, Body::ActiveTestResp(_)) && p.sequence_id == 2 {
                return anyhow::Ok(());
            }
        }
    }
    .await;
    match tested {
        Ok(()) => steps.push(format!(
            "ACTIVE_TEST answered in {} ms",
            t.elapsed().as_millis()
        )),
        Err(e) => {
            steps.push(format!("ACTIVE_TEST: {e}"));
            return fail(
                steps,
                "logged in, but the gateway does not answer ACTIVE_TEST: the link would be dropped"
                    .into(),
            );
        }
    }
    let _ = c.send(Pdu::new(3, Body::Terminate)).await;
    let terminated = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match c.recv().await {
                Ok(p) if matches!(p.body, Body::TerminateResp) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    steps.push(if terminated {
        "TERMINATE answered".into()
    } else {
        "TERMINATE not answered (harmless)".into()
    });
    let v = if version == Version::V30 {
        "3.0"
    } else {
        "2.0"
    };
    CmppReport {
        address: address.to_string(),
        steps,
        version: Some(v.into()),
        ok: true,
        verdict: format!(
            "OK: login and ACTIVE_TEST work over CMPP {v}; protocol = \"cmpp{}\"",
            &v[..1]
        ),
    }
}
