//! Fuzz target: any bytes into the CMPP framer and PDU parsers of both versions. The body is
//! `cmpp::fuzz_parse`, which also runs in the stable unit tests; it panics only on a real bug
//! (a parse that panics, or a parsed PDU that does not emit back to the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    smsgate_fuzz::cmpp::fuzz_parse(data);
});
