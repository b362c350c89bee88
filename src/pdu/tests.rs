//! Codec-wide unit tests: error positions, multipart encoding, and the fuzz body over random
//! inputs (so stable CI covers what the fuzzer checks).

use super::*;

// Source: pmarti/python-messaging messaging/test/test_sms.py (UCS2 DELIVER "中兴通讯").
const UCS2_DELIVER: &str = "07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF";

#[test]
fn every_truncation_names_an_octet() {
    let full = decode_hex(UCS2_DELIVER).unwrap();
    for n in 0..full.len() {
        let e = Sms::parse(&full[..n]).unwrap_err();
        let off = e.offset().expect("positional error");
        assert!(off <= n, "{e} for {n} octets");
    }
    let e = Sms::parse(&full[..20]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "octet 19: TP-SCTS is cut short (the PDU ends too early)"
    );
    let mut long = full.clone();
    long.push(0);
    assert_eq!(
        Sms::parse(&long).unwrap_err(),
        PduError::Trailing {
            offset: full.len(),
            count: 1
        }
    );
}

#[test]
fn bad_values_name_field_and_octet() {
    // MTI 11 at octet 1 (after an empty SMSC part).
    let e = Sms::parse_hex("0003").unwrap_err();
    assert_eq!(
        e.to_string(),
        "octet 1: invalid first octet: message type indicator 11 is reserved"
    );
    assert_eq!(
        Sms::parse_hex("0G").unwrap_err(),
        PduError::Hex { position: 1 }
    );
    assert_eq!(
        Sms::parse_hex("001").unwrap_err(),
        PduError::OddHex { digits: 3 }
    );
    // A SCTS (octet 12) whose first semi-octet is 0xA.
    let e = Sms::parse_hex("00040B914316709807F200088A604290224080084E2D5174901A8BAF").unwrap_err();
    assert_eq!(e.offset(), Some(12));
}

#[test]
fn multipart_submit_carries_udh_and_fill_bits() {
    let mut opts = SubmitOptions::new(Address::parse_number("+8613912345678").unwrap());
    opts.concat_reference = 0x1234;
    let text: String = "0123456789".repeat(20);
    let parts = encode_submit(&opts, &text).unwrap();
    assert_eq!(parts.len(), 2);
    let mut joined = String::new();
    for p in &parts {
        let sms = Sms::parse(&p.pdu).unwrap();
        assert_eq!(sms.tpdu_len(), p.cmgs_length);
        assert_eq!(
            p.pdu.len() - 1,
            p.cmgs_length,
            "SMSC part is the single 00 octet"
        );
        let Tpdu::Submit(s) = sms.tpdu else { panic!() };
        let c = s.user_data.udh.unwrap().concat_info().unwrap();
        assert_eq!((c.reference, c.total, c.seq), (0x34, 2, p.seq));
        joined.push_str(s.user_data.body.text().unwrap());
    }
    assert_eq!(joined, text);
    // UDH 050003342 then 153 septets: UDL = 7 + 153 = 160 = 0xA0, first text octet after 1 fill bit.
    assert!(parts[0].hex().contains("A0050003340201"));

    opts.concat = ConcatKind::Concat16;
    let parts = encode_submit(&opts, &"中".repeat(100)).unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].hex().contains("0608041234020"));
    assert_eq!(parts[0].cmgs_length, 14 + 7 + 132);
}

#[test]
fn deliver_and_status_report_build_and_parse() {
    let scts = Scts::from_timestamp("2026-11-24T12:00:00Z".parse().unwrap(), 8 * 3600);
    let mut opts = DeliverOptions::new(Address::parse_number("+8613912345678").unwrap(), scts);
    opts.concat_reference = 7;
    let text = "退订回T。".repeat(30);
    let parts = encode_deliver(&opts, &text).unwrap();
    assert_eq!(parts.len(), 3);
    let mut r = Reassembler::new();
    let mut done = None;
    for p in parts.iter().rev() {
        let sms = Sms::parse(&p.pdu).unwrap();
        assert_eq!(sms.tpdu.kind(), "deliver");
        done = r.push(sms);
    }
    assert_eq!(done.unwrap().body, Body::Text(text));

    let report = StatusReport::new(
        9,
        Address::parse_number("+8613912345678").unwrap(),
        scts,
        scts,
        TpStatus(0x46),
    );
    let sms = Sms {
        smsc: None,
        tpdu: Tpdu::StatusReport(report.clone()),
    };
    let back = Sms::parse(&sms.emit()).unwrap();
    assert_eq!(back.tpdu, Tpdu::StatusReport(report));
    assert_eq!(TpStatus(0x46).class(), StatusClass::Permanent);
    assert_eq!(TpStatus(0x61).class(), StatusClass::TemporaryFinal);
    assert_eq!(TpStatus(0x21).class(), StatusClass::Temporary);
    assert_eq!(TpStatus(0x46).text(), "validity period expired");
}

#[test]
fn fuzz_body_survives_random_and_mutated_input() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5e5);
    let seeds: Vec<Vec<u8>> = [
        UCS2_DELIVER,
        "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
        "0791538375000075061805810531F1019082416500400190824165004000",
    ]
    .iter()
    .map(|h| decode_hex(h).unwrap())
    .collect();
    for i in 0..20000 {
        let mut data = if i % 2 == 0 {
            let n = rng.random_range(0..80);
            (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>()
        } else {
            seeds[i % seeds.len()].clone()
        };
        for _ in 0..rng.random_range(0..4) {
            if data.is_empty() {
                break;
            }
            let at = rng.random_range(0..data.len());
            match rng.random_range(0..3) {
                0 => data[at] = rng.random(),
                1 => data.truncate(at),
                _ => data.insert(at, rng.random()),
            }
        }
        fuzz_decode(&data);
    }
}

#[test]
fn oversized_header_and_alphanumeric_escape_emit_consistently() {
    // Regression: a parsed 8-bit/UCS2 UD may carry a header longer than 140 octets; emit used to
    // cut the header mid-element while UDHL still claimed the full length.
    let mut tpdu = decode_hex("00440B914316709807F2000880604290224080").unwrap();
    tpdu.push(203); // UDL: UDHL octet + 200 + one UCS2 character
    tpdu.push(200); // UDHL
    for _ in 0..50 {
        tpdu.extend_from_slice(&[0x70, 2, 0xAB, 0xCD]);
    }
    tpdu.extend_from_slice(&[0x4E, 0x2D]);
    let sms = Sms::parse(&tpdu).unwrap();
    fuzz_decode(&tpdu);
    let again = Sms::parse(&sms.emit()).unwrap();
    assert_eq!(
        again
            .tpdu
            .user_data()
            .unwrap()
            .udh
            .as_ref()
            .unwrap()
            .elements
            .len(),
        34
    );

    // An alphanumeric sender whose 11th septet would be an escape: the pair is dropped whole.
    let a = Address::alphanumeric("ABCDEFGHIJ€");
    let mut out = Vec::new();
    a.emit_tp(&mut out);
    let (_, b) = Address::parse_tp(&out).unwrap();
    assert_eq!(b.value, "ABCDEFGHIJ");
}

#[test]
fn status_report_optional_parameters() {
    // TS 23.040 9.2.3.27: PI 0x07 announces PID, DCS (UCS2) and UD; a reserved PI bit (0x08)
    // means octets after the UD are to be discarded.
    let base = "0791538375000075061805810531F1019082416500400190824165004046";
    let with_ud = format!("{base}0700080400410042");
    let sms = Sms::parse_hex(&with_ud).unwrap();
    let Tpdu::StatusReport(r) = &sms.tpdu else {
        panic!()
    };
    assert_eq!(r.status.class(), StatusClass::Permanent);
    assert_eq!(r.pid, Some(0));
    assert_eq!(r.dcs, Some(Dcs::UCS2));
    assert_eq!(r.user_data.as_ref().unwrap().body.text(), Some("AB"));
    assert_eq!(sms.to_hex(), with_ud);
    let reserved = format!("{base}0800AABB");
    let Tpdu::StatusReport(r) = Sms::parse_hex(&reserved).unwrap().tpdu else {
        panic!()
    };
    assert_eq!((r.pid, r.dcs, r.user_data), (None, None, None));
    assert!(
        Sms::parse_hex(&format!("{base}0100AA")).is_err(),
        "trailing octets without reason"
    );
}
