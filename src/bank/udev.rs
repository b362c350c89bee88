//! The udev database's word on a port: the `SMSGATE_DIALECT` property our rules
//! (`udev/90-smsgate.rules`) set from the USB vendor, read from udev's data file for the tty's
//! device (`<root>/c<major>:<minor>`, lines `E:KEY=value`) when the dialect is left to
//! auto-detection. Only the file is read (no libudev): the daemon may run where udev is absent
//! (containers, the virtual bank), and then there is simply no hint.
//!
//! What must always hold: a hint never stops a modem from starting: no file, no property,
//! `auto`, an unreadable file or a port that is not a character device all mean "probe"; a
//! name that is no known dialect is logged and ignored (probe), never guessed at.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::modem::dialect::{self, Dialect};

/// Where udev keeps its database of devices.
pub const UDEV_DATA: &str = "/run/udev/data";

/// The property the rules set.
const PROPERTY: &str = "SMSGATE_DIALECT";

/// The udev data file of the character device `port` leads to (symlinks followed), if it is
/// one.
fn data_file(udev_data: &Path, port: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(port).ok()?;
    if !meta.file_type().is_char_device() {
        return None;
    }
    let rdev = meta.rdev();
    Some(udev_data.join(format!(
        "c{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    )))
}

/// The value of `E:SMSGATE_DIALECT=` in a udev data file's text.
fn property(text: &str) -> Option<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .find_map(|l| l.strip_prefix(PROPERTY)?.strip_prefix('='))
        .map(str::trim)
}

/// The dialect the udev rules name for `port`, if they name a known one (see the module doc
/// for everything that means "probe instead").
pub fn dialect_hint(udev_data: &Path, port: &Path) -> Option<&'static Dialect> {
    let file = data_file(udev_data, port)?;
    let text = std::fs::read_to_string(&file).ok()?;
    let name = property(&text)?;
    if name.is_empty() || name.eq_ignore_ascii_case("auto") {
        return None;
    }
    match dialect::by_name(name) {
        Some(d) => {
            tracing::info!(port = %port.display(), dialect = d.name, "dialect from the udev hint");
            Some(d)
        }
        None => {
            tracing::warn!(
                port = %port.display(),
                hint = name,
                udev = %file.display(),
                "udev names an unknown dialect: ignored, probing the modem"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pseudo-terminal (a real character device) and its udev data file name.
    fn pty() -> (nix::pty::OpenptyResult, PathBuf, String) {
        let pty = nix::pty::openpty(None, None).unwrap();
        let path = nix::unistd::ttyname(&pty.slave).unwrap();
        let rdev = std::fs::metadata(&path).unwrap().rdev();
        let name = format!(
            "c{}:{}",
            nix::sys::stat::major(rdev),
            nix::sys::stat::minor(rdev)
        );
        (pty, path, name)
    }

    fn entry(root: &Path, file: &str, dialect_line: &str) {
        // As `udevadm info` shows a port our rules matched (other keys around ours).
        let text = format!(
            "S:gsm/usb1-1.2-if02\nI:5261722\nE:ID_VENDOR_ID=12d1\n{dialect_line}\n\
             E:SMSGATE_PORT_ROLE=primary\nG:systemd\n"
        );
        std::fs::write(root.join(file), text).unwrap();
    }

    #[test]
    fn the_hint_of_the_ttys_device_names_its_dialect() {
        let root = tempfile::tempdir().unwrap();
        let (_pty, path, file) = pty();
        assert_eq!(dialect_hint(root.path(), &path), None, "no entry: probe");
        entry(root.path(), &file, "E:SMSGATE_DIALECT=huawei");
        assert_eq!(
            dialect_hint(root.path(), &path).map(|d| d.name),
            Some("huawei")
        );
        // Through a symlink, as the rules name ports (/dev/gsm/...).
        let link = root.path().join("modem0");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(
            dialect_hint(root.path(), &link).map(|d| d.name),
            Some("huawei")
        );
        entry(root.path(), &file, "E:SMSGATE_DIALECT=PHS");
        assert_eq!(
            dialect_hint(root.path(), &path).map(|d| d.name),
            Some("phs")
        );
    }

    #[test]
    fn auto_unknown_or_missing_hints_mean_probe() {
        let root = tempfile::tempdir().unwrap();
        let (_pty, path, file) = pty();
        for line in [
            "E:SMSGATE_DIALECT=auto",
            "E:SMSGATE_DIALECT=",
            "E:SMSGATE_DIALECT=huawie",
            "E:SMSGATE_DIALECTS=huawei",
            "E:ID_MODEL=huawei",
        ] {
            entry(root.path(), &file, line);
            assert_eq!(dialect_hint(root.path(), &path), None, "{line}");
        }
        // Not a character device: no device number, no hint.
        let plain = root.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        assert_eq!(dialect_hint(root.path(), &plain), None);
        assert_eq!(dialect_hint(Path::new("/nonexistent/udev"), &path), None);
    }
}
