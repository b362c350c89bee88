//! `smsgate diag --cmpp` (issue 12) against the virtual ISMG of `smsgate sim --cmpp`, with the
//! real binary: a good login, a 2.0-only gateway (3.0 refused with status 4, then 2.0), a wrong
//! secret (status 3, exit 1), a secret file others may read (refused, exit 2); the secret is
//! never printed.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_smsgate");

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, extra: &[&str]) -> (Sim, String) {
    let mut child = Command::new(BIN)
        .args(["sim", "--modems", "0", "--dir"])
        .arg(dir)
        .args(["--cmpp", "127.0.0.1:0", "--cmpp-secret", "s3cret-value"])
        .args(extra)
        .env_remove("SMSGATE_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut addr = String::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("cmpp ") {
            addr = a.trim().to_string();
        }
        if line == "ready" {
            break;
        }
    }
    assert!(!addr.is_empty());
    (Sim(child), addr)
}

fn secret(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn diag(addr: &str, secret: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["diag", "--cmpp", addr, "--sp-id", "901234", "--secret-file"])
        .arg(secret)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("s3cret"), "the secret was printed: {text}");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn diag_cmpp_gives_a_verdict_for_each_case() {
    let dir = tempfile::tempdir().unwrap();
    let good = secret(dir.path(), "good", "s3cret-value\n", 0o600);
    let wrong = secret(dir.path(), "wrong", "s3cret-wrong\n", 0o640);
    let open = secret(dir.path(), "open", "s3cret-value\n", 0o644);
    let (_sim, addr) = start(&dir.path().join("a"), &[]);
    let (code, text) = diag(&addr, &good);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("CMPP 3.0") && text.contains("ACTIVE_TEST answered"),
        "{text}"
    );
    let (code, text) = diag(&addr, &wrong);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("status 3"), "{text}");
    let (code, text) = diag(&addr, &open);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("0600 or 0640"), "{text}");

    let (_old, addr2) = start(&dir.path().join("b"), &["--cmpp-version", "2.0"]);
    let (code, text) = diag(&addr2, &good);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("status 4") && text.contains("CMPP 2.0"),
        "{text}"
    );
    assert!(text.contains("protocol = \"cmpp2\""), "{text}");
}
