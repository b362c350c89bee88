//! smsgate: the engine of a business-SMS platform that drives banks of GSM and PHS modems
//! with AT commands in PDU mode. This crate is the library behind the one binary `smsgate`;
//! `main.rs` only parses arguments and calls [`cli::run`].
//!
//! # Layout
//! Modules follow the way a message travels (see DESIGN.md):
//!
//! - [`pdu`]: sans-I/O SMS codec (3GPP TS 23.040 / 23.038): addresses, time stamps, DCS, UDH,
//!   GSM 7-bit and UCS2 text, SUBMIT / DELIVER / STATUS-REPORT, splitting and reassembly.
//!   No input makes it panic.
//! - [`sim`]: the virtual modem bank (`smsgate sim`): pseudo-terminals answering AT commands
//!   like real GSM/PHS modems of several dialects, with faults, inbound SMS and status reports.
//! - [`store`]: the SQLite file (WAL), its migrations and every transaction; no SQL elsewhere.
//! - [`cli`]: the clap command tree; each command is a thin client of the modules above.
//!
//! Later layers (AT engine, modem actors, virtual modem bank, store, scheduler, policy, audit,
//! API) are added as their own modules with the same rule: protocol code is sans-I/O, I/O lives
//! at the edges, and every file opens with what it owns and what must always hold.

pub mod cli;
pub mod pdu;
pub mod sim;
pub mod store;
