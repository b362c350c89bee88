//! Helpers of the web console's tests (tests/web_console.rs): the whole stack as real processes
//! — the virtual modem bank, the daemon (with the test as its front end), `smsgate web` — users
//! made with the real `smsgate user add`, a plain HTTP/1.1 client that shows cookies, and
//! headless Debian Chromium driven through chromedriver (WebDriver, fantoccini).
//!
//! What must always hold: every process is killed when its guard drops, chromedriver and the
//! Chromium it starts as one process group (a failing test leaves no browser behind); each
//! browser has a fresh profile directory; every wait has a deadline and says what it awaited.
#![allow(dead_code)] // each test uses a different subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::support;
pub use crate::support::{Daemon, Sim, BIN};

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `smsgate web`, killed when dropped (its log printed if the test fails).
pub struct WebProcess {
    child: Child,
    pub log: PathBuf,
}

impl Drop for WebProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- web log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// The bank, the daemon and the web process of one test.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub sim: Sim,
    pub daemon: Daemon,
    pub web: WebProcess,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
}

impl Stack {
    /// One modem, account "e2e" (the test's uid, which is also the front end), the web
    /// listener on a free port with `web_extra` in its `[web]` table.
    pub async fn start(web_extra: &str, tls: bool) -> Stack {
        Stack::start_with(web_extra, tls, "50ms").await
    }

    /// [`Stack::start`] with the bank's send latency (`--latency`).
    pub async fn start_with(web_extra: &str, tls: bool, latency: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let sim = Sim::start_with(&dir.path().join("bank"), 1, latency);
        let port = free_port();
        let config = support::write_config(dir.path(), &sim.ports_glob(), "");
        let uid = nix::unistd::getuid().as_raw();
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            format!(
                "frontends = [{uid}]\n{text}\n[web]\nlisten = \"127.0.0.1:{port}\"\n{web_extra}\n"
            ),
        )
        .unwrap();
        let daemon = Daemon::start(dir.path(), &sim);
        daemon.wait_ready(1).await;
        let log = dir.path().join("web.log");
        let child = Command::new(BIN)
            .args(["web", "--config"])
            .arg(&config)
            .env("SMSGATE_LOG", "smsgate=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn smsgate web");
        let web = WebProcess { child, log };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(Instant::now() < deadline, "web never listened on {addr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let base = format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" });
        Stack {
            dir,
            sim,
            daemon,
            web,
            addr,
            base,
        }
    }

    /// `smsgate user add LOGIN --account e2e --role customer --password-file F`.
    pub fn add_customer(&self, login: &str, password: &str) {
        let file = self.dir.path().join(format!("{login}.password"));
        std::fs::write(&file, password).unwrap();
        let out = self.daemon.cli(&[
            "user",
            "add",
            login,
            "--account",
            "e2e",
            "--role",
            "customer",
            "--password-file",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `smsgate credit add --account e2e --messages N --valid-for D`.
    pub fn add_credit(&self, messages: u64, valid_for: &str) {
        let n = messages.to_string();
        let out = self.daemon.cli(&[
            "credit",
            "add",
            "--account",
            "e2e",
            "--messages",
            &n,
            "--valid-for",
            valid_for,
        ]);
        assert!(
            out.status.success(),
            "credit add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn web_log(&self) -> String {
        std::fs::read_to_string(&self.web.log).unwrap_or_default()
    }
}

/// One HTTP answer with its headers.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(hyper::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value a `Set-Cookie` gives `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let first = c.split(';').next()?;
            let (k, v) = first.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// The value of the first `name="csrf" value="..."` field in the page.
    pub fn csrf_field(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        Some(self.body[at..].split('"').next()?.to_owned())
    }
}

/// One request on a fresh connection over `io` (plain or TLS) to `host` (`127.0.0.1:PORT`,
/// as a browser's Host header says it).
pub async fn request_on<IO>(
    io: IO,
    host: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .expect("HTTP handshake");
    let conn = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("send request");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    conn.abort();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// [`request_on`] over plain TCP.
pub async fn http(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let host = addr.to_string();
    request_on(tcp, &host, method, path, headers, body.as_bytes().to_vec()).await
}

/// chromedriver (and the Chromium it starts) in their own process group, killed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a fresh
    /// profile (flags fit for root in a container).
    pub async fn start() -> Browser {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn /usr/bin/chromedriver (apt-get install chromium-driver)");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "chromedriver never started: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    /// Waits for element `#id` to exist.
    pub async fn el(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id} on the page: {e}"))
    }

    /// Types `text` into `#id` (cleared first).
    pub async fn fill(&self, id: &str, text: &str) {
        let e = self.el(id).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, id: &str) {
        self.el(id).await.click().await.expect("click");
    }

    pub async fn text(&self, id: &str) -> String {
        self.el(id).await.text().await.expect("text")
    }

    /// Polls `#id`'s text until `ok` holds, or fails naming `what` and the text last seen.
    pub async fn wait_text(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let t = match self.client.find(Locator::Id(id)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ok(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: #{id} says {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    /// Saves a PNG of the page as target/screenshots/NAME.png (for a person to look at).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Logs in through the form.
    pub async fn login(&self, base: &str, login: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.fill("login", login).await;
        self.fill("password", password).await;
        self.click("login-submit").await;
    }

    /// The first login of a new user: log in, which leads to the password page, and change it.
    pub async fn first_login(&self, base: &str, login: &str, initial: &str, new: &str) {
        self.login(base, login, initial).await;
        self.el("password-form").await;
        assert_eq!(
            self.path().await,
            "/password",
            "the first login must change the password"
        );
        self.fill("current", initial).await;
        self.fill("new", new).await;
        self.fill("new2", new).await;
        self.click("password-submit").await;
        self.el("password-done").await;
    }

    /// Ends the WebDriver session (the drop kills the processes either way).
    pub async fn close(&self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and every Chromium process it started: one process group.
        let pgid = nix::unistd::Pid::from_raw(self.driver.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}

/// A JSON value from a page script.
pub async fn js(browser: &Browser, script: &str) -> Value {
    browser
        .client
        .execute(script, vec![])
        .await
        .expect("script")
}
