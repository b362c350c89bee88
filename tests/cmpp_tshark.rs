//! An independent decoder for our CMPP codec: the PDUs we emit are written into a pcap file
//! (written by hand here: global header, then per packet a record header and Ethernet / IPv4 /
//! TCP headers, the TCP port 7890 that Wireshark's CMPP dissector registers on) and read back
//! with Debian's `tshark -T fields -e cmpp.…`, field by field. Wireshark's dissector decodes
//! the 3.0 layouts, so the PDUs are emitted as 3.0. The test FAILS (does not skip) when
//! tshark is missing: CI installs it (.ci/run), and a skipped independent check proves nothing.

use std::path::Path;
use std::process::Command;

use smsgate::cmpp::{
    Body, Connect, ConnectResp, Deliver, DeliverContent, MsgFmt, MsgId, MsgIdResult, Pdu,
    StatusReport, Submit, Version,
};

const SP: [u8; 4] = [10, 0, 0, 1];
const ISMG: [u8; 4] = [10, 0, 0, 2];
const SP_PORT: u16 = 40000;
const ISMG_PORT: u16 = 7890;

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let mut odd: Option<u8> = None;
    for c in chunks {
        for &b in *c {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(hi) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A pcap (LINKTYPE_ETHERNET) of one TCP connection, SP:40000 <-> ISMG:7890, with each PDU in
/// its own segment and the sequence numbers of both directions kept right, so Wireshark's TCP
/// layer hands each segment to the CMPP dissector whole.
struct Pcap {
    out: Vec<u8>,
    seq_up: u32,
    seq_down: u32,
    t: u32,
}

impl Pcap {
    fn new() -> Pcap {
        let mut out = Vec::new();
        out.extend(0xa1b2_c3d4u32.to_le_bytes()); // magic, microsecond stamps
        out.extend(2u16.to_le_bytes());
        out.extend(4u16.to_le_bytes());
        out.extend(0i32.to_le_bytes()); // thiszone
        out.extend(0u32.to_le_bytes()); // sigfigs
        out.extend(65535u32.to_le_bytes()); // snaplen
        out.extend(1u32.to_le_bytes()); // Ethernet
        Pcap {
            out,
            seq_up: 1000,
            seq_down: 5000,
            t: 0,
        }
    }

    /// `up`: SP -> ISMG (a request from us); else ISMG -> SP.
    fn packet(&mut self, up: bool, payload: &[u8]) {
        let (src, dst, sport, dport) = if up {
            (SP, ISMG, SP_PORT, ISMG_PORT)
        } else {
            (ISMG, SP, ISMG_PORT, SP_PORT)
        };
        let (seq, ack) = if up {
            (self.seq_up, self.seq_down)
        } else {
            (self.seq_down, self.seq_up)
        };
        let mut tcp = Vec::new();
        tcp.extend(sport.to_be_bytes());
        tcp.extend(dport.to_be_bytes());
        tcp.extend(seq.to_be_bytes());
        tcp.extend(ack.to_be_bytes());
        tcp.push(5 << 4); // data offset 5 words
        tcp.push(0x18); // PSH, ACK
        tcp.extend(65535u16.to_be_bytes());
        tcp.extend([0, 0, 0, 0]); // checksum (below), urgent pointer
        let tcp_len = (tcp.len() + payload.len()) as u16;
        let mut pseudo = Vec::new();
        pseudo.extend(src);
        pseudo.extend(dst);
        pseudo.extend([0, 6]);
        pseudo.extend(tcp_len.to_be_bytes());
        let c = checksum(&[&pseudo, &tcp, payload]);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());

        let mut ip = vec![0x45, 0];
        ip.extend((20 + tcp_len).to_be_bytes());
        ip.extend([0, 1, 0x40, 0, 64, 6, 0, 0]); // id 1, DF, TTL 64, TCP, checksum 0
        ip.extend(src);
        ip.extend(dst);
        let c = checksum(&[&ip]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());

        let mut frame = vec![0x02, 0, 0, 0, 0, if up { 2 } else { 1 }];
        frame.extend([0x02, 0, 0, 0, 0, if up { 1 } else { 2 }]);
        frame.extend([0x08, 0x00]);
        frame.extend(&ip);
        frame.extend(&tcp);
        frame.extend(payload);

        self.t += 1;
        self.out.extend(1_764_000_000u32.to_le_bytes());
        self.out.extend((self.t * 1000).to_le_bytes());
        self.out.extend((frame.len() as u32).to_le_bytes());
        self.out.extend((frame.len() as u32).to_le_bytes());
        self.out.extend(&frame);
        if up {
            self.seq_up += payload.len() as u32;
        } else {
            self.seq_down += payload.len() as u32;
        }
    }
}

fn tshark(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args([
            "-n",
            "-d",
            "tcp.port==7890,cmpp",
            "-Y",
            "cmpp",
            "-T",
            "fields",
        ])
        .args([
            "-E",
            "separator=|",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run tshark ({e}): this test needs Debian's tshark \
             (apt-get install tshark; .ci/run installs it)"
        )
    });
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

#[test]
fn tshark_reads_our_pdus() {
    let v = Version::V30;
    let msg_id = MsgId {
        month: 11,
        day: 29,
        hour: 20,
        minute: 30,
        second: 5,
        gateway: 901234,
        sequence: 77,
    }
    .build();
    let mut submit = Submit::new(
        b"106901234542",
        b"13800138000",
        MsgFmt::Ucs2,
        // "你好" in UCS2 behind a concatenation UDH: part 1 of 2.
        vec![0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 0x4f, 0x60, 0x59, 0x7d],
    );
    submit.pk_total = 2;
    submit.pk_number = 1;
    submit.tp_udhi = 1;
    submit.registered_delivery = 1;
    submit.service_id = b"MXX0000001".to_vec();
    submit.msg_src = b"901234".to_vec();
    let report = StatusReport {
        msg_id,
        stat: b"DELIVRD".to_vec(),
        submit_time: b"2611292030".to_vec(),
        done_time: b"2611292031".to_vec(),
        dest_terminal_id: b"13800138000".to_vec(),
        smsc_sequence: 4242,
        layout: Version::V30,
    };
    let pdus: Vec<(bool, Pdu)> = vec![
        (
            true,
            Pdu::new(
                1,
                Body::Connect(Connect::new(b"901234", b"secret", 1129203005, 0x30)),
            ),
        ),
        (
            false,
            Pdu::new(
                1,
                Body::ConnectResp(ConnectResp {
                    status: 0,
                    authenticator_ismg: [0x11; 16],
                    version: 0x30,
                }),
            ),
        ),
        (true, Pdu::new(2, Body::Submit(submit))),
        (
            false,
            Pdu::new(2, Body::SubmitResp(MsgIdResult { msg_id, result: 0 })),
        ),
        (
            false,
            Pdu::new(
                9,
                Body::Deliver(Deliver::new(
                    b"106901234542",
                    b"13800138000",
                    DeliverContent::Report(report),
                )),
            ),
        ),
        (
            true,
            Pdu::new(9, Body::DeliverResp(MsgIdResult { msg_id, result: 0 })),
        ),
        (true, Pdu::new(3, Body::ActiveTest)),
        (false, Pdu::new(3, Body::ActiveTestResp(Some(0)))),
        (true, Pdu::new(4, Body::Terminate)),
        (false, Pdu::new(4, Body::TerminateResp)),
    ];
    let mut pcap = Pcap::new();
    for (up, p) in &pdus {
        pcap.packet(*up, &p.emit(v).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cmpp.pcap");
    std::fs::write(&file, &pcap.out).unwrap();

    let rows = tshark(
        &file,
        &[
            "cmpp.Command_Id",
            "cmpp.Sequence_Id",
            "cmpp.Total_Length",
            "cmpp.connect.Source_Addr",
            "cmpp.Version",
            "cmpp.connect_resp.Status",
            "cmpp.Msg_Id",
            "cmpp.Dest_terminal_Id",
            "cmpp.Msg_Length",
            "cmpp.submit.Src_Id",
            "cmpp.submit.Pk_total",
            "cmpp.Msg_Fmt",
            "cmpp.submit_resp.Result",
            "cmpp.Msg_Id.ismg_code",
            "cmpp.Msg_Id.timestamp",
            "cmpp.Msg_Id.sequence_id",
            "cmpp.deliver.Report.Status",
            "cmpp.Report.SMSC_sequence",
            "cmpp.deliver.Dest_Id",
        ],
    );
    let text = format!("{rows:#?}");
    assert_eq!(rows.len(), pdus.len(), "one CMPP row per packet: {text}");
    for (row, (_, p)) in rows.iter().zip(&pdus) {
        let emitted = p.emit(v).unwrap();
        let id = u32::from_be_bytes(emitted[4..8].try_into().unwrap());
        assert_eq!(row[0], format!("{id:#010x}"), "Command_Id: {text}");
        assert_eq!(row[1], p.sequence_id.to_string(), "Sequence_Id: {text}");
        assert_eq!(row[2], emitted.len().to_string(), "Total_Length: {text}");
    }
    // CONNECT: the SP id and the version.
    assert_eq!(rows[0][3], "901234", "{text}");
    assert_eq!(rows[0][4], "03.00", "{text}"); // Wireshark shows 0x30 as major.minor
    assert_eq!(rows[1][5], "0", "{text}");
    // SUBMIT: recipient, content length, Src_Id, parts, UCS2.
    assert_eq!(rows[2][7], "13800138000", "{text}");
    assert_eq!(rows[2][8], "10", "{text}");
    assert_eq!(rows[2][9], "106901234542", "{text}");
    assert_eq!(rows[2][10], "2", "{text}");
    assert_eq!(rows[2][11], "8", "{text}");
    // SUBMIT_RESP: the Msg_Id as one 64-bit number and its packed fields.
    assert_eq!(rows[3][6], format!("{msg_id:#018x}"), "{text}");
    assert_eq!(rows[3][12], "0", "{text}");
    // Wireshark (4.0, packet-cmpp.c) reads the ISMG code as (bytes 3..7 & 0x3FFFFF00) >> 16,
    // 8 bits short of the spec's bits 38..17 (it should shift by 8): it shows our gateway
    // code 901234 as 901234 >> 8. The time fields and the sequence it reads right.
    assert_eq!(rows[3][13], (901234 >> 8).to_string(), "{text}");
    assert_eq!(rows[3][14], "11/29 20:30:05", "{text}");
    assert_eq!(rows[3][15], "77", "{text}");
    // DELIVER carrying the 71-byte report: the DELIVER's own Msg_Id (0), then the report's.
    assert_eq!(
        rows[4][6],
        format!("0x0000000000000000,{msg_id:#018x}"),
        "{text}"
    );
    assert_eq!(rows[4][16], "DELIVRD", "{text}");
    assert_eq!(rows[4][17], "4242", "{text}");
    assert_eq!(rows[4][18], "106901234542", "{text}");
}
