//! `AtSession` on its own (what `smsgate diag` uses): typed commands over a duplex stream, the
//! byte trace in both directions, URCs kept aside, device errors separate from link errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsgate::at::{CmeError, Csq, DeviceError, Digester, Raw, SignalQuality, Urc};
use smsgate::modem::{AtSession, Direction, LinkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(start_paused = true)]
async fn typed_commands_trace_and_urcs() {
    let (a, mut b) = tokio::io::duplex(1024);
    let modem = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let n = b.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"AT+CSQ\r");
        b.write_all(b"AT+CSQ\r\r\n+CMTI: \"SM\",1\r\n\r\n+CSQ: 31,0\r\n\r\nOK\r\n")
            .await
            .unwrap();
        let n = b.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"AT+CPIN?\r");
        b.write_all(b"\r\n+CME ERROR: 10\r\n").await.unwrap();
        let n = b.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ATI\r");
        // Silence: the next command times out.
        b
    });
    let seen = Arc::new(Mutex::new(Vec::<(Direction, Vec<u8>)>::new()));
    let s2 = seen.clone();
    let mut s = AtSession::new(a, Digester::new());
    s.set_trace(move |d, bytes| s2.lock().unwrap().push((d, bytes.to_vec())));

    assert_eq!(
        s.send(&Csq).await,
        Ok(Ok(SignalQuality { rssi: 31, ber: 0 }))
    );
    assert_eq!(
        s.take_urcs(),
        vec![Urc::NewMessage {
            mem: "SM".into(),
            index: 1
        }]
    );
    let r = s.send(&Raw::new("AT+CPIN?")).await;
    assert_eq!(r, Ok(Err(DeviceError::Cme(CmeError::SimNotInserted))));
    let r = s
        .send_with_timeout(&Raw::new("ATI"), Duration::from_secs(2))
        .await;
    assert!(matches!(r, Err(LinkError::Timeout { .. })), "{r:?}");
    let _peer = modem.await.unwrap();

    let seen = seen.lock().unwrap();
    let sent: Vec<u8> = seen
        .iter()
        .filter(|(d, _)| *d == Direction::ToModem)
        .flat_map(|(_, b)| b.clone())
        .collect();
    assert_eq!(sent, b"AT+CSQ\rAT+CPIN?\rATI\r");
    assert!(seen
        .iter()
        .any(|(d, b)| *d == Direction::FromModem && b.windows(2).any(|w| w == b"OK")));
}

#[tokio::test]
async fn closed_stream_is_gone() {
    let (a, b) = tokio::io::duplex(64);
    drop(b);
    let mut s = AtSession::new(a, Digester::new());
    let r = s.send(&Raw::new("AT")).await;
    assert!(matches!(r, Err(LinkError::Gone(_))), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_line_noise_is_a_link_error() {
    let (a, mut b) = tokio::io::duplex(64 * 1024);
    let noise = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let _ = b.read(&mut buf).await.unwrap();
        // A wrong baud rate looks like this: bytes that never form a line.
        b.write_all(&[0xffu8; 9000]).await.unwrap();
        b
    });
    let mut s = AtSession::new(a, Digester::new());
    let r = s.send(&Raw::new("AT")).await;
    assert!(matches!(r, Err(LinkError::Garbage { .. })), "{r:?}");
    assert!(s.digester().stats().garbage_bytes > 4096);
    let _peer = noise.await.unwrap();
}
