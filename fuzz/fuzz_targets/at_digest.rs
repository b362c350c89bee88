//! Fuzz target: any bytes, fed in data-dependent chunks, into the AT digester. The body is
//! `at::fuzz_digest`, which also runs in the stable unit tests; it panics only on a real bug
//! (a panic in `digest`, more bytes consumed than given, or a line held past MAX_LINE).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    smsgate_fuzz::at::fuzz_digest(data);
});
