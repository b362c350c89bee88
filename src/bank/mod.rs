//! The modem bank: finds the serial ports that match the configuration, follows hot-plug, and
//! supervises one modem actor per port (restart with back-off). A SIM is identified by its
//! ICCID/IMSI, never by the port it happens to sit on.

pub mod discover;

pub use discover::{PortEvent, PortPatterns};
