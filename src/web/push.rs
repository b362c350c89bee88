//! Pushed reports (webhooks): the front end's loop over the daemon's outbox. It takes the due
//! events over the socket (`GET /v1/webhooks/due`), POSTs each to its account's URL, signed,
//! and acknowledges it (`POST /v1/webhooks/due/{id}/ack`) after a 2xx, or reports the failed
//! attempt (`POST /v1/webhooks/due/{id}/fail` with the error, which the daemon keeps with the
//! attempt's time for the console's stuck events) and the daemon sets the next attempt
//! (back-off, given up after 24 h). The
//! daemon keeps the outbox, so a restart of either process loses nothing; an event whose
//! acknowledgement was lost is sent again (receivers de-duplicate by `X-Smsgate-Event`).
//!
//! Signature: `X-Smsgate-Signature: sha256=HEX`, HMAC-SHA256 with the account's secret over
//! `TIMESTAMP.BODY`, where TIMESTAMP is `X-Smsgate-Timestamp` (Unix seconds); a receiver checks
//! it and refuses old timestamps (replays).
//!
//! What must always hold: a customer's server, slow or silent, holds one attempt for at most
//! [`ATTEMPT_TIMEOUT`]; the secret and the body are never logged; events of one message go out
//! in order (the daemon hands out none behind an undelivered earlier one).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use sha2::Sha256;
use tokio_rustls::rustls;

use crate::api::admin::{AckRequest, DueEvent, DueEvents};
use crate::api::client::{ApiClient, ClientError};

/// The longest one delivery attempt may take (connect, TLS, request, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between rounds when the outbox had nothing due.
const IDLE: Duration = Duration::from_secs(1);

/// `sha256=HEX` of HMAC-SHA256(secret, "timestamp.body").
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Works through the outbox until `stop` turns true.
pub async fn run(client: ApiClient, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let busy = match round(&client).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::debug!("web: webhooks: {e}");
                false
            }
        };
        if *stop.borrow() {
            return;
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// One batch of due events; how many were attempted.
async fn round(client: &ApiClient) -> Result<usize, ClientError> {
    let due: DueEvents = client
        .call(Method::GET, "/v1/webhooks/due?limit=100", None::<&()>)
        .await?;
    let n = due.events.len();
    for event in due.events {
        let outcome = attempt(&event).await;
        match &outcome {
            Ok(status) => tracing::info!(
                account = event.account,
                event = event.id,
                status,
                "web: webhook delivered"
            ),
            Err(e) => tracing::info!(
                account = event.account,
                event = event.id,
                attempts = event.attempts + 1,
                "web: webhook not delivered: {e}"
            ),
        }
        // A delivery is acknowledged; a failed attempt is reported with its error, which the
        // daemon keeps with the attempt's time for the console's list of stuck events.
        let _: serde_json::Value = match outcome {
            Ok(_) => {
                let uri = format!("/v1/webhooks/due/{}/ack", event.id);
                let ack = AckRequest { error: None };
                client.call(Method::POST, &uri, Some(&ack)).await?
            }
            Err(e) => client.webhook_fail(event.id, &e).await?,
        };
    }
    Ok(n)
}

fn tls_client() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
            // The ring provider supports the default versions; this is unreachable in practice.
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(Arc::clone(config))
}

/// One POST of the event; `Ok(status)` for a 2xx.
async fn attempt(event: &DueEvent) -> Result<u16, String> {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, post(event)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
    }
}

async fn post(event: &DueEvent) -> Result<u16, String> {
    let uri: hyper::Uri = event.url.parse().map_err(|_| "bad URL".to_owned())?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("only http and https URLs".into()),
    };
    let host = uri.host().ok_or("no host in the URL")?.to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or(host.clone());
    let timestamp = jiff::Timestamp::now().as_second();
    let body = Bytes::from(event.body.clone());
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("smsgate/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-smsgate-event", event.id.to_string())
        .header("x-smsgate-timestamp", timestamp.to_string())
        .header(
            "x-smsgate-signature",
            signature(&event.secret, timestamp, &body),
        )
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let status = if https {
        let name = rustls::pki_types::ServerName::try_from(bare)
            .map_err(|e| format!("server name: {e}"))?;
        let tls = tls_client()
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        send(tls, request).await?
    } else {
        send(tcp, request).await?
    };
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(format!("HTTP {status}"))
    }
}

async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<u16, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"));
    let status = match response {
        Ok(r) => {
            let status = r.status().as_u16();
            // Read (and drop) the answer, bounded by the attempt's timeout.
            let _ = r.into_body().collect().await;
            Ok(status)
        }
        Err(e) => Err(e),
    };
    conn.abort();
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2 shape: key "Jefe", data "what do ya want for nothing?".
        let sig = signature("Jefe", 0, b"what do ya want for nothing?");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("sha256={want}"));
        assert_ne!(sig, signature("Jefe", 1, b"what do ya want for nothing?"));
    }
}
