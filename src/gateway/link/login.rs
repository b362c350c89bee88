//! Logging a link in: the CONNECT with its MD5 authenticator, the version asked for and the
//! fallback from 3.0 to 2.0, and what a refusal means (a wrong secret or SP id waits for an
//! operator; anything else is retried). What must always hold: the secret never leaves this
//! exchange (no log, no error text carries it); every wait is bounded.

use super::*;

/// Why a login failed.
pub(super) enum LoginFail {
    VersionTooHigh,
    /// Only an operator can fix it.
    Refused(String),
    Transient(String),
}

pub(super) fn version_name(v: Version) -> &'static str {
    match v {
        Version::V20 => "2.0",
        Version::V30 => "3.0",
    }
}

/// MMDDHHMMSS of the local time (gateways compare it with their own clock, in China's zone
/// like the host's).
pub(super) fn now_timestamp() -> u32 {
    let z = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system());
    cmpp::timestamp(
        z.month() as u8,
        z.day() as u8,
        z.hour() as u8,
        z.minute() as u8,
        z.second() as u8,
    )
}

pub(super) async fn write_bounded(
    io: &mut BoxedStream,
    bytes: &[u8],
    bound: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(bound, io.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err(format!("write did not finish within {bound:?}")),
    }
}

/// Connects and logs in: the stream, the version spoken and bytes read past CONNECT_RESP.
pub(super) async fn login(
    cfg: &GatewayConfig,
    connector: &Connector,
    version: Version,
    seq: u32,
) -> Result<(BoxedStream, Version, Vec<u8>), LoginFail> {
    let attempt = async {
        let mut io = (connector)()
            .await
            .map_err(|e| LoginFail::Transient(format!("connect to {}: {e}", cfg.address)))?;
        let c = Connect::new(
            cfg.sp_id.as_bytes(),
            cfg.secret.as_bytes(),
            now_timestamp(),
            version.byte(),
        );
        let source = c.authenticator_source;
        let bytes = Pdu::new(seq, Body::Connect(c))
            .emit(version)
            .map_err(|e| LoginFail::Refused(format!("CONNECT does not encode: {e}")))?;
        write_bounded(&mut io, &bytes, cfg.write_timeout)
            .await
            .map_err(LoginFail::Transient)?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 1024];
        loop {
            match cmpp::decode(&buf, version) {
                Ok((Some(pdu), n)) => {
                    buf.drain(..n);
                    if let Body::ConnectResp(r) = pdu.body {
                        return judge_login(cfg, version, &source, r).map(|v| (io, v, buf));
                    }
                }
                Ok((None, _)) => {
                    let n = io
                        .read(&mut chunk)
                        .await
                        .map_err(|e| LoginFail::Transient(format!("read during login: {e}")))?;
                    if n == 0 {
                        return Err(LoginFail::Transient(
                            "gateway closed the link before CONNECT_RESP".into(),
                        ));
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                Err(CmppError::Body { consumed, .. }) => {
                    buf.drain(..consumed.min(buf.len()));
                }
                Err(e) => return Err(LoginFail::Transient(format!("unreadable login: {e}"))),
            }
        }
    };
    match tokio::time::timeout(cfg.connect_timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(LoginFail::Transient(format!(
            "no CONNECT_RESP within {:?}",
            cfg.connect_timeout
        ))),
    }
}

pub(super) fn judge_login(
    cfg: &GatewayConfig,
    asked: Version,
    source: &[u8; 16],
    r: cmpp::ConnectResp,
) -> Result<Version, LoginFail> {
    match r.status {
        connect_status::OK => {
            let secret = cfg.secret.as_bytes();
            let ok = [Version::V20, Version::V30]
                .iter()
                .any(|v| cmpp::authenticator_ismg(0, *v, source, secret) == r.authenticator_ismg);
            if !ok {
                // Implementations disagree on how Status is hashed: a warning, not a refusal.
                tracing::warn!(gateway = %cfg.name, "AuthenticatorISMG does not match (ignored)");
            }
            // The gateway speaks the lower of what we asked and what it supports.
            let theirs = Version::from_byte(r.version);
            Ok(if theirs == Version::V20 || asked == Version::V20 {
                Version::V20
            } else {
                Version::V30
            })
        }
        connect_status::VERSION_TOO_HIGH => Err(LoginFail::VersionTooHigh),
        connect_status::AUTH_FAILED => Err(LoginFail::Refused(
            "login refused (status 3): wrong shared secret, or the account is locked".into(),
        )),
        connect_status::ILLEGAL_SOURCE => Err(LoginFail::Refused(format!(
            "login refused (status 2): SP id {} unknown to the gateway, or this host's address not allowed",
            cfg.sp_id
        ))),
        connect_status::BAD_STRUCTURE => Err(LoginFail::Refused(
            "login refused (status 1): the gateway cannot read our CONNECT".into(),
        )),
        other => Err(LoginFail::Transient(format!(
            "login refused with status {other}"
        ))),
    }
}
