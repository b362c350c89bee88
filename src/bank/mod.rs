//! The modem bank: finds the serial ports that match the configuration, follows hot-plug, and
//! supervises one modem actor per port (restart with back-off). A SIM is identified by its
//! ICCID/IMSI, never by the port it happens to sit on. `discover.rs` finds and watches the
//! ports; `supervise.rs` runs one supervisor per port and hands each running modem to its
//! [`Host`] (the daemon), which owns what the modem's events mean; `udev.rs` reads the udev
//! rules' dialect hint for a port.

pub mod discover;
pub mod supervise;
pub mod udev;

pub use discover::{PortEvent, PortPatterns};
pub use supervise::{BankOptions, Host};
