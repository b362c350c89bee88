//! Property tests for the codec: encode then decode gives back the text, the number and the
//! parts for random texts (ASCII, GSM extension characters, Chinese, emoji, mixed) and numbers;
//! part counts follow the limits; reassembly in any order; decoding arbitrary bytes never panics.

use proptest::prelude::*;
use smsgate::pdu::{
    count, encode_deliver, encode_submit, Address, ConcatKind, DeliverOptions, Encoding,
    Reassembler, Scts, Sms, StatusReport, SubmitOptions, TpStatus, Tpdu, ValidityPeriod,
};

fn text_strategy() -> impl Strategy<Value = String> {
    let ascii = prop::char::range(' ', '~');
    let ext = prop::sample::select(vec!['{', '}', '[', ']', '~', '|', '^', '\\', '€', '\u{c}']);
    let gsm_latin = prop::sample::select(vec!['é', 'Ä', 'ß', 'Δ', '@', '£', '\n', 'ñ']);
    let chinese = prop::char::range('\u{4e00}', '\u{9fa5}');
    let emoji = prop::char::range('\u{1F600}', '\u{1F64F}');
    prop_oneof![
        prop::collection::vec(ascii.clone(), 0..400),
        prop::collection::vec(prop_oneof![ascii.clone(), ext.clone(), gsm_latin], 0..400),
        prop::collection::vec(chinese.clone(), 0..250),
        prop::collection::vec(prop_oneof![chinese.clone(), emoji.clone()], 0..200),
        prop::collection::vec(prop_oneof![ascii, ext, chinese, emoji], 0..300),
    ]
    .prop_map(|v| v.into_iter().collect())
}

fn number_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\+[1-9][0-9]{0,18}",
        "0[1-9][0-9]{0,18}",
        "1[0-9]{10}",
        "[1-9][0-9]{0,19}",
    ]
}

fn per_part(encoding: Encoding, kind: ConcatKind) -> (usize, usize) {
    match (encoding, kind) {
        (Encoding::Gsm7, ConcatKind::Concat8) => (160, 153),
        (Encoding::Gsm7, ConcatKind::Concat16) => (160, 152),
        (_, ConcatKind::Concat8) => (70, 67),
        (_, ConcatKind::Concat16) => (70, 66),
    }
}

fn units(encoding: Encoding, text: &str) -> usize {
    match encoding {
        Encoding::Gsm7 => smsgate::pdu::septet_count(text).unwrap(),
        _ => text.encode_utf16().count(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn submit_round_trips(text in text_strategy(), number in number_strategy(),
                          wide in any::<bool>(), reference in any::<u16>(),
                          srr in any::<bool>(), vp in proptest::option::of(any::<u8>())) {
        let recipient = Address::parse_number(&number).unwrap();
        let mut opts = SubmitOptions::new(recipient.clone());
        opts.concat = if wide { ConcatKind::Concat16 } else { ConcatKind::Concat8 };
        opts.concat_reference = reference;
        opts.status_report = srr;
        opts.validity = vp.map(ValidityPeriod::Relative);
        let parts = encode_submit(&opts, &text).unwrap();
        let c = count(&text);
        if !wide {
            prop_assert_eq!(c.parts, parts.len());
        }
        let (single, multi) = per_part(c.encoding, opts.concat);
        prop_assert_eq!(parts.len() == 1, c.units <= single);
        let mut joined = String::new();
        for p in &parts {
            prop_assert_eq!(p.total as usize, parts.len());
            prop_assert_eq!(p.encoding, c.encoding);
            let sms = Sms::parse(&p.pdu).unwrap();
            prop_assert_eq!(sms.tpdu_len(), p.cmgs_length);
            prop_assert!(p.cmgs_length <= 175);
            let Tpdu::Submit(s) = sms.tpdu else { panic!("not a submit") };
            prop_assert_eq!(&s.recipient, &recipient);
            prop_assert_eq!(s.recipient.to_string(), number.clone());
            prop_assert_eq!(s.status_report_request, srr);
            prop_assert_eq!(s.validity, opts.validity);
            let t = s.user_data.body.text().unwrap().to_string();
            let limit = if parts.len() == 1 { single } else { multi };
            prop_assert!(units(c.encoding, &t) <= limit);
            if parts.len() > 1 {
                let ci = s.user_data.udh.as_ref().unwrap().concat_info().unwrap();
                prop_assert_eq!(ci.seq, p.seq);
                prop_assert_eq!(ci.reference, if wide { reference } else { reference & 0xFF });
            }
            joined.push_str(&t);
        }
        prop_assert_eq!(joined, text);
    }

    #[test]
    fn deliver_parts_reassemble_in_any_order(text in text_strategy(), number in number_strategy(),
                                             secs in 946_684_800i64..4_102_444_799,
                                             zone in -48i32..=56, seed in any::<u64>()) {
        let ts = jiff::Timestamp::from_second(secs).unwrap();
        let scts = Scts::from_timestamp(ts, zone * 900);
        prop_assert_eq!(scts.to_timestamp(), Some(ts));
        let sender = Address::parse_number(&number).unwrap();
        let mut opts = DeliverOptions::new(sender, scts);
        opts.concat_reference = (seed & 0xFF) as u16;
        let parts = encode_deliver(&opts, &text).unwrap();
        let mut order: Vec<usize> = (0..parts.len()).collect();
        // A deterministic shuffle from the seed, plus a duplicate of the first part.
        let mut s = seed | 1;
        for i in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut r = Reassembler::new();
        let mut done = Vec::new();
        for (n, &i) in order.iter().enumerate() {
            let sms = Sms::parse(&parts[i].pdu).unwrap();
            if n == 0 && parts.len() > 1 {
                prop_assert!(r.push(sms.clone()).is_none());
            }
            done.extend(r.push(sms));
        }
        prop_assert_eq!(done.len(), 1);
        prop_assert_eq!(done[0].body.text(), Some(text.as_str()));
        prop_assert_eq!(r.pending(), 0);
    }

    #[test]
    fn status_report_round_trips(mr in any::<u8>(), number in number_strategy(),
                                 st in any::<u8>(), secs in 946_684_800i64..4_102_444_799) {
        let scts = Scts::from_timestamp(jiff::Timestamp::from_second(secs).unwrap(), 8 * 3600);
        let r = StatusReport::new(mr, Address::parse_number(&number).unwrap(), scts, scts,
                                  TpStatus(st));
        let sms = Sms { smsc: Some(Address::parse_number("+8613800755500").unwrap()),
                        tpdu: Tpdu::StatusReport(r) };
        let bytes = sms.emit();
        prop_assert_eq!(Sms::parse(&bytes).unwrap(), sms);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        smsgate::pdu::fuzz_decode(&data);
        let _ = Tpdu::parse(&data);
    }

    #[test]
    fn parsed_values_survive_emit(data in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(sms) = Sms::parse(&data) {
            let again = Sms::parse(&sms.emit());
            prop_assert!(again.is_ok(), "{:?} -> {:?}", sms, again);
        }
    }
}
