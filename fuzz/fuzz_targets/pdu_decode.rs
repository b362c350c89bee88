//! Fuzz target: any bytes into the PDU decoder. The body is `pdu::fuzz_decode`, which also runs
//! in the stable unit tests; it panics only on a real bug (parse panic, or emit not re-parsing).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    smsgate_fuzz::pdu::fuzz_decode(data);
});
