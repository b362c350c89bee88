//! Simple commands (part of `at::command`): the set-and-forget commands whose reply is just
//! `OK` (`AT`, `ATE0`, `+CMEE`, `+CMGF`, `+CNMI`, `+CNMA`, `+CMMS`, `+CMGD`, `+CREG=`...),
//! PIN entry and [`Raw`] lines. What must hold: a command carrying a secret (the PIN) never
//! shows it in `display()` or `Debug`.

use std::time::Duration;

use super::super::error::DeviceError;
use super::{AtCommand, RegKind};

macro_rules! simple_command {
    ($(#[$m:meta])* $name:ident, |$s:ident| $line:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name;
        simple_command!(@impl $name, |$s| $line);
    };
    ($(#[$m:meta])* $name:ident ( $($field:ident : $ty:ty),* ), |$s:ident| $line:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name { $(pub $field: $ty),* }
        simple_command!(@impl $name, |$s| $line);
    };
    (@impl $name:ident, |$s:ident| $line:expr) => {
        impl AtCommand for $name {
            type Response = ();
            fn line(&self) -> String {
                let $s = self;
                $line
            }
            fn parse(&self, _lines: &[String]) -> Result<(), DeviceError> {
                Ok(())
            }
        }
    };
}

simple_command!(/// `AT`: is anyone there?
    At, |_s| "AT".to_string());
simple_command!(/// `ATE0`: echo off.
    EchoOff, |_s| "ATE0".to_string());
simple_command!(/// `AT+CMEE=<n>`: 1 numeric, 2 verbose errors.
    Cmee(mode: u8), |s| format!("AT+CMEE={}", s.mode));
simple_command!(/// `AT+CMGF=<n>`: 0 PDU mode.
    Cmgf(mode: u8), |s| format!("AT+CMGF={}", s.mode));
simple_command!(/// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>`: new-message routing.
    Cnmi(mode: u8, mt: u8, bm: u8, ds: u8, bfr: u8),
    |s| format!("AT+CNMI={},{},{},{},{}", s.mode, s.mt, s.bm, s.ds, s.bfr));
simple_command!(/// `AT+CNMA`: acknowledge a +CMT/+CDS (with +CSMS=1).
    Cnma, |_s| "AT+CNMA".to_string());
/// `AT+CPIN="<pin>"`: unlock the SIM.
#[derive(Clone, PartialEq, Eq)]
pub struct CpinEnter {
    pub pin: String,
}

impl std::fmt::Debug for CpinEnter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CpinEnter { pin: \"****\" }")
    }
}

impl AtCommand for CpinEnter {
    type Response = ();
    fn line(&self) -> String {
        format!("AT+CPIN=\"{}\"", self.pin)
    }
    fn display(&self) -> String {
        "AT+CPIN=\"****\"".into()
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn parse(&self, _lines: &[String]) -> Result<(), DeviceError> {
        Ok(())
    }
}
simple_command!(/// `AT+CMMS=<n>`: 2 keeps the relay link open while more parts follow.
    Cmms(mode: u8), |s| format!("AT+CMMS={}", s.mode));
simple_command!(/// `AT+CMGD=<index>[,<flag>]`: delete a stored message.
    Cmgd(index: u32, flag: Option<u8>),
    |s| match s.flag { Some(f) => format!("AT+CMGD={},{}", s.index, f), None => format!("AT+CMGD={}", s.index) });
simple_command!(/// `AT+CREG=<n>` (or +CGREG/+CEREG): registration URC mode.
    RegSet(kind: RegKind, mode: u8), |s| format!("AT{}={}", s.kind.prefix(), s.mode));

/// Any command line, for init strings from a dialect and for `smsgate diag`; the response is
/// every information line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub line: String,
    pub timeout: Duration,
}

impl Raw {
    pub fn new(line: impl Into<String>) -> Self {
        Self {
            line: line.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl AtCommand for Raw {
    type Response = Vec<String>;
    fn line(&self) -> String {
        self.line.clone()
    }
    fn prefix(&self) -> Option<&'static str> {
        None
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn parse(&self, lines: &[String]) -> Result<Vec<String>, DeviceError> {
        Ok(lines.to_vec())
    }
}
