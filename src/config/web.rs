//! `[web]`: the listener of `smsgate web` (address, TLS, plain-HTTP opt-in, per-account rate);
//! the daemon itself ignores it.
//!
//! What must hold: a listener reachable from the network speaks TLS unless `insecure_http` says a
//! TLS-terminating proxy is in front (keys must not cross a network in clear); `tls_cert` and
//! `tls_key` go together; the rate is at least 1.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[web]`: the listener of `smsgate web`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Address and port, e.g. "127.0.0.1:8080" or "[::]:443".
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, the listener speaks TLS (rustls).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address (behind a TLS-terminating proxy). Default false:
    /// keys must not cross a network in clear.
    pub insecure_http: bool,
    /// Network API requests per second per account (a token bucket holding one second's
    /// worth); more get 429 with Retry-After.
    pub rate_per_second: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            rate_per_second: 10,
        }
    }
}

impl WebConfig {
    /// The parsed `listen` address.
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.listen.parse().map_err(|_| {
            format!(
                "{:?} is not an address and port such as \"127.0.0.1:8080\" or \"[::]:443\"",
                self.listen
            )
        })
    }

    /// Whether the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_owned(), msg));
        let addr = match self.listen_addr() {
            Ok(a) => a,
            Err(e) => return bad("web.listen", e),
        };
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            let missing = if self.tls_cert.is_none() {
                "web.tls_cert"
            } else {
                "web.tls_key"
            };
            return bad(
                missing,
                "tls_cert and tls_key go together: give both or neither".into(),
            );
        }
        if !addr.ip().is_loopback() && !self.tls() && !self.insecure_http {
            return bad(
                "web.listen",
                format!(
                    "{addr} is reachable from the network but no TLS is configured: set \
                     web.tls_cert and web.tls_key, or web.insecure_http = true behind a \
                     TLS-terminating proxy"
                ),
            );
        }
        if self.rate_per_second == 0 {
            return bad("web.rate_per_second", "must be at least 1".into());
        }
        Ok(())
    }
}
