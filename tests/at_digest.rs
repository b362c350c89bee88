//! The AT digester through the public API: a real published transcript fed whole, byte by byte
//! and with garbage in front; property tests that no input panics and that the events do not
//! depend on how the bytes were chunked.

use proptest::prelude::*;
use smsgate::at::{fuzz_digest, AtCommand, Cmgs, DeviceError, Digester, Event, Urc};

/// Feeds `input` in pieces of `chunk` bytes; consecutive garbage reports are merged.
fn run(input: &[u8], chunk: usize, expect: Option<&'static str>) -> Vec<Event> {
    let mut d = Digester::new();
    d.expect(expect, expect.is_some());
    let mut buf = Vec::new();
    let mut out: Vec<Event> = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let (ev, n) = d.digest(&buf);
            assert!(n <= buf.len());
            buf.drain(..n);
            match ev {
                Some(Event::Garbage { bytes }) => match out.last_mut() {
                    Some(Event::Garbage { bytes: b }) => *b += bytes,
                    _ => out.push(Event::Garbage { bytes }),
                },
                Some(e) => out.push(e),
                None if n == 0 => break,
                None => {}
            }
        }
    }
    out
}

/// Source: the PDU-mode example session of Lars Pettersson's "SMS and the PDU format"
/// (dreamfabric.com), reproduced on developershome.com: a modem with echo on sends a
/// message and then receives one with +CNMI=1,2 (+CMT with its PDU line).
const DREAMFABRIC: &[u8] = b"AT+CMGF=0\r\r\nOK\r\nAT+CNMI=1,2\r\r\nOK\r\nAT+CMGS=29\r\r\n> \
079153588077010111000C915358508282420000A71154747A0E4ACf41f4f29C9E769F4121\x1a\r\n\
+CMGS: 212\r\n\r\nOK\r\n\r\n+CMT: ,34\r\n\
0791535880770101200C915358508282420000691170413375081154747A0E4ACF41F4F29C9E769F4121\r\n";

#[test]
fn published_transcript_whole_bytewise_and_behind_garbage() {
    let whole = run(DREAMFABRIC, DREAMFABRIC.len(), Some("+CMGS"));
    assert_eq!(whole, run(DREAMFABRIC, 1, Some("+CMGS")));
    let mut noisy = vec![0u8, 0xff, 0x03, 0x8a];
    noisy.extend_from_slice(DREAMFABRIC);
    let behind = run(&noisy, 3, Some("+CMGS"));
    assert_eq!(behind[0], Event::Garbage { bytes: 4 });
    assert_eq!(&behind[1..], &whole[..]);

    let infos: Vec<String> = whole
        .iter()
        .filter_map(|e| {
            if let Event::Info(l) = e {
                Some(l.clone())
            } else {
                None
            }
        })
        .collect();
    let mr = Cmgs {
        length: 29,
        pdu_hex: String::new(),
    }
    .parse(&infos[infos.len() - 1..])
    .unwrap();
    assert_eq!(mr, 212);
    assert_eq!(whole.iter().filter(|e| **e == Event::Ok).count(), 3);
    assert!(whole.contains(&Event::Prompt));
    assert!(whole.iter().any(
        |e| matches!(e, Event::Urc(Urc::Message { length: 34, pdu, .. })
        if pdu.starts_with("0791535880770101200C"))
    ));
}

#[test]
fn errors_in_the_middle_of_urc_floods() {
    let t = b"\r\n^RSSI:9\r\n\r\n+CMS ERROR: 42\r\n\r\n^MODE:3,3\r\n";
    let ev = run(t, 2, Some("+CMGS"));
    assert_eq!(ev.len(), 3);
    assert!(matches!(&ev[1], Event::Error(DeviceError::Cms(e)) if e.code() == 42));
}

/// Regression (found by `chunking_does_not_change_events`): a bare '>' prompt split from its
/// space by a chunk boundary used to turn the next '>' into an information line.
#[test]
fn prompt_split_from_its_space() {
    let input = b"\r\n> >\r\n\r\n>!\r\n";
    let whole = run(input, input.len(), Some("+CMGS"));
    for chunk in 1..input.len() {
        assert_eq!(run(input, chunk, Some("+CMGS")), whole, "chunk {chunk}");
    }
    assert_eq!(whole.iter().filter(|e| **e == Event::Prompt).count(), 3);
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\r\nOK\r\n".to_vec()),
        Just(b"\r\nERROR\r\n".to_vec()),
        Just(b"\r\n+CME ERROR: 10\r\n".to_vec()),
        Just(b"\r\n+CMS ERROR: invalid PDU mode parameter\r\n".to_vec()),
        Just(b"\r\n+CMTI: \"SM\",1\r\n".to_vec()),
        Just(b"\r\n+CMT: ,3\r\n0011AA\r\n".to_vec()),
        Just(b"\r\n+CDS: 3\r\n0011AA\r\n".to_vec()),
        Just(b"\r\n^RSSI:12\r\n".to_vec()),
        Just(b"\r\n> ".to_vec()),
        Just(b"AT+CSQ\r".to_vec()),
        Just(b"\r\n+CMGS: 3\r\n".to_vec()),
        "[ -~]{0,20}\r\n".prop_map(|s| s.into_bytes()),
    ]
}

proptest! {
    #[test]
    fn no_input_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_digest(&data);
    }

    #[test]
    fn chunking_does_not_change_events(
        tokens in proptest::collection::vec(token(), 0..20),
        chunk in 1usize..40,
    ) {
        let input: Vec<u8> = tokens.concat();
        prop_assert_eq!(run(&input, input.len().max(1), Some("+CMGS")), run(&input, chunk, Some("+CMGS")));
    }
}
