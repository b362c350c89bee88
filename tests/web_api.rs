//! The network API end to end (issue 13): the real `smsgate web` process on real TCP (plain
//! and TLS), the real daemon behind it on its Unix socket with the virtual modem bank, API
//! keys made with the real `smsgate key` commands.
//!
//! What it proves: a key outside its IP allow-list is refused (403), an unknown or revoked key
//! is 401, an account over its rate gets 429 with Retry-After, a key acts for its own account
//! only, malformed and oversize requests get the socket API's JSON errors, every path and
//! method of the OpenAPI document is a real route, a message sent through the network API
//! reaches the modem bank and is followed to `delivered`, key changes are audited without the
//! key, the web log never shows a key or a full number, and TLS works with a test certificate
//! (openssl CLI) while a non-loopback listener without TLS is a configuration error.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use support::{wait_for, Daemon, Sim, BIN};
use tokio::io::{AsyncRead, AsyncWrite};

/// A free loopback port (bound and released; the web process binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `smsgate web --config FILE`, killed when dropped (its log printed if the test fails).
struct Web {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
}

impl Web {
    fn start(config: &Path, addr: SocketAddr, log: &Path) -> Web {
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(BIN)
            .args(["web", "--config"])
            .arg(config)
            .env("SMSGATE_LOG", "smsgate=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn smsgate web");
        Web {
            child: Some(child),
            addr,
            log: log.to_path_buf(),
        }
    }

    /// Waits until the port accepts connections.
    async fn wait_listening(&mut self) {
        let addr = self.addr;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("smsgate web exited ({status}): {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "web never listened on {addr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- web log:\n{}", self.log_text());
        }
    }
}

/// One answer: status, Retry-After / WWW-Authenticate, JSON body (Null if not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    www_authenticate: Option<String>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// One HTTP/1.1 request on a fresh connection over `io`.
async fn request_on<IO>(
    io: IO,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Vec<u8>,
) -> Answer
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .expect("HTTP handshake");
    let conn = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let response = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("send request");
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &hyper::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let retry_after = header(hyper::header::RETRY_AFTER);
    let www_authenticate = header(hyper::header::WWW_AUTHENTICATE);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    conn.abort();
    Answer {
        status,
        retry_after,
        www_authenticate,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn plain(
    addr: SocketAddr,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    request_on(tcp, method, path, key, body).await
}

/// Like [`plain`] with a JSON body (none for Null), but waits out the account's rate limit
/// (429) instead of returning it.
async fn call(addr: SocketAddr, method: Method, path: &str, key: &str, body: Value) -> Answer {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    call_raw(addr, method, path, key, bytes).await
}

async fn call_raw(
    addr: SocketAddr,
    method: Method,
    path: &str,
    key: &str,
    bytes: Vec<u8>,
) -> Answer {
    for _ in 0..50 {
        let a = plain(addr, method.clone(), path, Some(key), bytes.clone()).await;
        if a.status != StatusCode::TOO_MANY_REQUESTS {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{method} {path}: rate limited for 15 s");
}

/// A POST declaring a 5 MiB body (over the 4 MiB limit), by hand: the answer's text, read
/// before the body is sent (the server must answer on the declared length alone).
async fn oversize(addr: SocketAddr, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..50 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/messages HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            5 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        if !text.starts_with("HTTP/1.1 429") {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("oversize POST: rate limited for 15 s");
}

/// `smsgate key add ... --json` against the daemon; the key and its id.
fn key_add(daemon: &Daemon, account: &str, allow: &[&str]) -> (String, i64) {
    let mut args = vec![
        "key",
        "add",
        "--account",
        account,
        "--name",
        "test",
        "--json",
    ];
    for a in allow {
        args.extend(["--allow-ip", a]);
    }
    let out = daemon.cli(&args);
    assert!(
        out.status.success(),
        "key add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["id"].as_i64().unwrap(),
    )
}

/// The daemon's config of `support::write_config`, with this file's front end and `[web]`.
fn configure(dir: &Path, sim: &Sim, web: &str) -> PathBuf {
    let path = support::write_config(dir, &sim.ports_glob(), "");
    let uid = nix::unistd::getuid().as_raw();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = format!(
        "frontends = [{uid}]\n{text}\n[[accounts]]\nname = \"other\"\nunmetered = true\n\n[web]\n{web}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_allow_lists_rate_limit_and_a_send_to_the_modem_bank() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("bank"), 1);
    let port = free_port();
    let config = configure(
        dir.path(),
        &sim,
        &format!("listen = \"127.0.0.1:{port}\"\nrate_per_second = 4"),
    );
    let daemon = Daemon::start(dir.path(), &sim);
    daemon.wait_ready(1).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut web = Web::start(&config, addr, &dir.path().join("web.log"));
    web.wait_listening().await;

    let (key, key_id) = key_add(&daemon, "e2e", &["127.0.0.0/8"]);
    let (far_key, _) = key_add(&daemon, "e2e", &["192.0.2.0/24"]);
    let (other_key, _) = key_add(&daemon, "other", &[]);

    // The OpenAPI document needs no key.
    let doc = plain(addr, Method::GET, "/api/v1/openapi.json", None, vec![]).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/api/v1/messages"]["post"].is_object());

    // No key, a wrong key: 401 with the JSON error and WWW-Authenticate.
    let none = plain(addr, Method::GET, "/api/v1/inbox", None, vec![]).await;
    assert_eq!((none.status.as_u16(), none.code()), (401, "unauthorized"));
    assert_eq!(none.www_authenticate.as_deref(), Some("Bearer"));
    let wrong = plain(addr, Method::GET, "/api/v1/inbox", Some("sgk_0000"), vec![]).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (401, "unauthorized"));
    // A good key outside its allow-list: 403.
    let far = plain(addr, Method::GET, "/api/v1/inbox", Some(&far_key), vec![]).await;
    assert_eq!(
        (far.status.as_u16(), far.code()),
        (403, "forbidden"),
        "{far:?}"
    );

    // A send through the network API reaches the bank and is followed to delivered.
    let to = support::recipient(3);
    let sent = call(
        addr,
        Method::POST,
        "/api/v1/messages",
        &key,
        json!({"to": [to], "text": "网络接口测试 web api"}),
    )
    .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    let id = sent.body["ids"][0].as_u64().expect("a message id");
    let path = format!("/api/v1/messages/{id}");
    wait_for("the message delivered", Duration::from_secs(30), || {
        let (path, key) = (path.clone(), key.clone());
        async move {
            let v = call(addr, Method::GET, &path, &key, Value::Null).await;
            (v.body["state"] == "delivered").then_some(())
        }
    })
    .await;
    assert!(
        sim.submits().iter().any(|s| s.to.ends_with(&to[3..])),
        "the bank never saw a submit to {to}: {:?}",
        sim.submits()
    );

    // Another account's key cannot see the message, nor name the first account.
    let foreign = call(addr, Method::GET, &path, &other_key, Value::Null).await;
    assert_eq!(foreign.status, 404, "{foreign:?}");
    let named = call(
        addr,
        Method::POST,
        "/api/v1/messages",
        &other_key,
        json!({"to": [to], "text": "hi", "account": "e2e"}),
    )
    .await;
    assert_eq!((named.status.as_u16(), named.code()), (403, "forbidden"));

    // Malformed, oversize, unknown route, wrong method, a parameter that tries to leave its
    // segment: the socket API's JSON errors.
    let bad = call_raw(
        addr,
        Method::POST,
        "/api/v1/messages",
        &key,
        b"{\"to\":".to_vec(),
    )
    .await;
    assert_eq!(
        (bad.status.as_u16(), bad.code()),
        (400, "bad_json"),
        "{bad:?}"
    );
    let huge = oversize(addr, &key).await;
    assert!(
        huge.starts_with("HTTP/1.1 413") && huge.contains("\"too_large\""),
        "{huge}"
    );
    let nowhere = call(addr, Method::GET, "/api/v1/modems", &key, Value::Null).await;
    assert_eq!(
        (nowhere.status.as_u16(), nowhere.code()),
        (404, "not_found")
    );
    let put = call(addr, Method::PUT, "/api/v1/messages", &key, Value::Null).await;
    assert_eq!(put.status, 405);
    let sneaky = call(
        addr,
        Method::GET,
        &format!("/api/v1/messages/{id}%2Fretry"),
        &key,
        Value::Null,
    )
    .await;
    assert_eq!(sneaky.status, 404, "{sneaky:?}");

    // Every documented path and method is a real route (not the 404/405 of no route).
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue; // "parameters"
            }
            let m: Method = method.to_uppercase().parse().unwrap();
            // Mutating routes get `{}`: a body the daemon refuses still proves the route.
            let concrete = path.replace("{id}", &id.to_string());
            let a = call(addr, m.clone(), &concrete, &key, json!({})).await;
            assert!(
                a.status != 405
                    && !(a.status == 404
                        && a.body["error"]["message"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("no such endpoint")),
                "{m} {path} is documented but not routed: {a:?}"
            );
        }
    }
    let credit = call(addr, Method::GET, "/api/v1/credit", &key, Value::Null).await;
    assert_eq!(credit.status, 200, "{credit:?}");

    // The key's account sets, reads and removes its own webhook; the secret is shown once.
    let put = call(
        addr,
        Method::PUT,
        "/api/v1/webhook",
        &key,
        json!({"url": "https://example.com/hook"}),
    )
    .await;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(put.body["account"], "e2e");
    let secret = put.body["secret"].as_str().unwrap_or_default().to_owned();
    assert!(secret.starts_with("whsec_"), "{put:?}");
    let got = call(addr, Method::GET, "/api/v1/webhook", &key, Value::Null).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body["url"], "https://example.com/hook");
    assert!(got.body.get("secret").is_none(), "{got:?}");
    let theirs = call(
        addr,
        Method::GET,
        "/api/v1/webhook",
        &other_key,
        Value::Null,
    )
    .await;
    assert_eq!(
        (theirs.body["account"].as_str(), &theirs.body["url"]),
        (Some("other"), &Value::Null),
        "another key sees its own account's, not e2e's: {theirs:?}"
    );
    let bad = call(
        addr,
        Method::PUT,
        "/api/v1/webhook",
        &key,
        json!({"url": "ftp://example.com/"}),
    )
    .await;
    assert_eq!((bad.status.as_u16(), bad.code()), (400, "invalid_field"));
    let gone = call(addr, Method::DELETE, "/api/v1/webhook", &key, Value::Null).await;
    assert_eq!(gone.status, 200, "{gone:?}");
    let got = call(addr, Method::GET, "/api/v1/webhook", &key, Value::Null).await;
    assert_eq!(got.body["url"], Value::Null, "{got:?}");

    // Rate: 4 per second per account. A burst on the other account's key gets 429 with
    // Retry-After, while the first account is not affected.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut limited = None;
    for _ in 0..12 {
        let a = plain(addr, Method::GET, "/api/v1/inbox", Some(&other_key), vec![]).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(a);
            break;
        }
        assert_eq!(a.status, 200, "{a:?}");
    }
    let limited = limited.expect("12 requests at once were never rate limited at 4/s");
    assert_eq!(limited.code(), "rate_limited");
    let after: u64 = limited.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(after >= 1, "{limited:?}");
    let mine = plain(addr, Method::GET, "/api/v1/inbox", Some(&key), vec![]).await;
    assert_eq!(mine.status, 200, "{mine:?}");

    // Revoked: 401 at once.
    let out = daemon.cli(&["key", "revoke", &key_id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked = plain(addr, Method::GET, "/api/v1/inbox", Some(&key), vec![]).await;
    assert_eq!(
        (revoked.status.as_u16(), revoked.code()),
        (401, "unauthorized")
    );
    // Refused keys from one address: past 5 per second, 429 without asking the daemon.
    let mut limited = None;
    for _ in 0..12 {
        let a = plain(
            addr,
            Method::GET,
            "/api/v1/inbox",
            Some("sgk_guess"),
            vec![],
        )
        .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(a);
            break;
        }
        assert_eq!(a.status, 401, "{a:?}");
    }
    let limited = limited.expect("12 wrong keys at once were never limited");
    assert!(limited.retry_after.is_some(), "{limited:?}");
    let listed = daemon.cli(&["key", "list", "--json"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("revoked_at") && !listed.contains(&key),
        "{listed}"
    );

    // Key changes are audited, without the key.
    let conn = rusqlite::Connection::open(&daemon.database).unwrap();
    let mut st = conn
        .prepare("SELECT event, outcome FROM audit_log WHERE event LIKE 'api_key%' ORDER BY seq")
        .unwrap();
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let events: Vec<&str> = rows.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        events,
        [
            "api_key_added",
            "api_key_added",
            "api_key_added",
            "api_key_revoked"
        ]
    );
    for (_, outcome) in &rows {
        for k in [&key, &far_key, &other_key] {
            assert!(!outcome.contains(k.as_str()), "{outcome}");
        }
    }

    // Neither log shows a key or the full number.
    for text in [
        web.log_text(),
        std::fs::read_to_string(&daemon.log).unwrap(),
    ] {
        for k in [&key, &far_key, &other_key] {
            assert!(!text.contains(k.as_str()), "a key in the log:\n{text}");
        }
        assert!(!text.contains(&to), "a full number in the log:\n{text}");
    }
    assert!(
        web.log_text().contains("web: POST /api/v1/messages"),
        "{}",
        web.log_text()
    );
}

/// A self-signed certificate for localhost/127.0.0.1 made with the openssl CLI.
fn test_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            // A leaf, not a CA (rustls refuses a CA certificate as the server's).
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

async fn tls_connect(
    connector: tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: String,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(name).unwrap();
    connector.connect(name, tcp).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_certificate_and_no_clear_text_off_loopback() {
    use tokio_rustls::rustls;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = test_certificate(dir.path());

    // Off loopback without TLS: a configuration error naming the key, before listening.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[web]\nlisten = \"0.0.0.0:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["web", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("web.listen") && err.contains("TLS"),
        "{err}"
    );

    // TLS on loopback; no daemon behind it.
    let port = free_port();
    let config = dir.path().join("smsgate.toml");
    std::fs::write(
        &config,
        format!(
            "socket = \"{}\"\n[web]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            dir.path().join("absent.sock").display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut web = Web::start(&config, addr, &dir.path().join("web.log"));
    web.wait_listening().await;

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tls = |name: &str| tls_connect(connector.clone(), addr, name.to_owned());
    let stream = tls("localhost").await.expect("TLS handshake");
    let doc = request_on(stream, Method::GET, "/api/v1/openapi.json", None, vec![]).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.0.3");
    // The daemon is not there: 503 in JSON, over TLS.
    let stream = tls("127.0.0.1").await.expect("TLS handshake by IP");
    let down = request_on(stream, Method::GET, "/api/v1/inbox", Some("sgk_x"), vec![]).await;
    assert_eq!(
        (down.status.as_u16(), down.code()),
        (503, "unavailable"),
        "{down:?}"
    );
    // A name the certificate does not cover is refused by the client.
    assert!(tls("example.com").await.is_err());
    // Clear text on the TLS port gets no HTTP answer.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = Request::get("/api/v1/openapi.json")
        .header(hyper::header::HOST, "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(sender.send_request(req).await.is_err());
    conn.abort();
}

/// What the test receiver got: (event id, timestamp, signature, body, the status it answered).
type Received = Arc<std::sync::Mutex<Vec<(String, String, String, String, u16)>>>;

/// A webhook receiver on loopback: answers 503 to its first `fail_first` requests, then 200.
async fn receiver(fail_first: usize) -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Received = Arc::default();
    let seen = Arc::clone(&got);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            let (id, ts, sig) = (
                                header("x-smsgate-event"),
                                header("x-smsgate-timestamp"),
                                header("x-smsgate-signature"),
                            );
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mut seen = seen.lock().unwrap();
                            let status = if seen.len() < fail_first { 503 } else { 200 };
                            let body = String::from_utf8_lossy(&body).into_owned();
                            seen.push((id, ts, sig, body, status));
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_not_repeated_after_a_restart() {
    use hmac::Mac;
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("bank"), 1);
    let port = free_port();
    let config = configure(dir.path(), &sim, &format!("listen = \"127.0.0.1:{port}\""));
    let mut daemon = Daemon::start(dir.path(), &sim);
    daemon.wait_ready(1).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut web = Web::start(&config, addr, &dir.path().join("web.log"));
    web.wait_listening().await;

    // The receiver is "down" (503) for the first attempt.
    let (hook, received) = receiver(1).await;
    let url = format!("http://{hook}/smsgate");
    let out = daemon.cli(&[
        "webhook",
        "set",
        "--account",
        "e2e",
        "--url",
        &url,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let set: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = set["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let to = support::recipient(5);
    let sent = daemon
        .client()
        .send(&support::request(vec![to.clone()], "webhook test"))
        .await
        .unwrap();
    let id = sent.ids[0].0;
    let delivered = wait_for(
        "the delivery report POSTed and answered 200",
        Duration::from_secs(30),
        || {
            let received = Arc::clone(&received);
            async move {
                let got = received.lock().unwrap().clone();
                got.into_iter().find(|r| {
                    r.4 == 200
                        && serde_json::from_str::<Value>(&r.3)
                            .is_ok_and(|b| b["message_id"] == id && b["state"] == "delivered")
                })
            }
        },
    )
    .await;
    let (event, ts, sig, body, _) = delivered;
    // Signed: HMAC-SHA256 with the account's secret over "timestamp.body".
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let age = jiff::Timestamp::now().as_second() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp {ts}");
    // The first attempt met the 503 and the same event was sent again.
    let attempts: Vec<u16> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == event)
        .map(|r| r.4)
        .collect();
    assert_eq!(attempts, [503, 200], "attempts of event {event}");

    // A reply from the recipient is pushed too.
    sim.ctl(&[
        "inject",
        "--modem",
        "0",
        "--from",
        &format!("+86{to}"),
        "--text",
        "收到，谢谢",
    ]);
    wait_for("the reply POSTed", Duration::from_secs(30), || {
        let received = Arc::clone(&received);
        async move {
            let got = received.lock().unwrap().clone();
            got.iter()
                .any(|r| {
                    serde_json::from_str::<Value>(&r.3)
                        .is_ok_and(|b| b["event"] == "inbound" && b["text"] == "收到，谢谢")
                })
                .then_some(())
        }
    })
    .await;

    // Both processes restart: nothing acknowledged is sent again.
    let before = received.lock().unwrap().len();
    drop(web);
    daemon
        .stop(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(60))
        .await;
    let daemon = Daemon::start(dir.path(), &sim);
    daemon.wait_ready(1).await;
    let mut web = Web::start(&config, addr, &dir.path().join("web2.log"));
    web.wait_listening().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = received.lock().unwrap().clone();
    assert_eq!(
        after.len(),
        before,
        "sent again after a restart: {:?}",
        &after[before..]
    );
    // The web log has neither the secret nor the number.
    for text in [
        web.log_text(),
        std::fs::read_to_string(dir.path().join("web.log")).unwrap(),
    ] {
        assert!(!text.contains(&secret) && !text.contains(&to), "{text}");
    }
}
