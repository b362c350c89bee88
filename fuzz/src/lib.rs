//! The codec under fuzzing: the very sources of `smsgate::pdu` (src/pdu), compiled here without
//! the daemon's dependencies (tokio, SQLite, axum) so a fuzz build stays small. The codec uses
//! only `super::` paths inside itself, which is what makes this inclusion possible; keep it so.

#[path = "../../src/pdu/mod.rs"]
pub mod pdu;

/// The AT digester and command parsers (src/at), included the same way; `at::fuzz_digest` is
/// the body of the `at_digest` target.
#[path = "../../src/at/mod.rs"]
pub mod at;

/// Chinese numbering (src/number.rs): the AT layer masks numbers in its logs with
/// `crate::number::mask`, so the number module comes along; it depends on nothing else.
#[path = "../../src/number.rs"]
pub mod number;

/// The CMPP codec (src/cmpp), included the same way; `cmpp::fuzz_parse` is the body of the
/// `cmpp_parse` target. It needs only std, thiserror and md-5.
#[path = "../../src/cmpp/mod.rs"]
pub mod cmpp;
