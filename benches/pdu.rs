//! Criterion benchmarks for the PDU codec. Targets on one core: >= 1,000,000 single-part decodes/s
//! and >= 500,000 single-part encodes/s. Run briefly:
//! `cargo bench --bench pdu -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smsgate::pdu::{count, encode_submit, Address, Sms, SubmitOptions};

// Source: pmarti/python-messaging messaging/test/test_sms.py (UCS2 DELIVER "中兴通讯").
const UCS2_DELIVER: &str = "07914306073011F0040B914316709807F2000880604290224080084E2D5174901A8BAF";
// Source: pmarti/python-messaging messaging/test/test_sms.py (GSM 7-bit DELIVER).
const GSM7_DELIVER: &str =
    "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07";

fn chinese(n: usize) -> String {
    "您好欢迎使用短信平台退订回T"
        .chars()
        .cycle()
        .take(n)
        .collect()
}

fn bench(c: &mut Criterion) {
    let opts = SubmitOptions::new(Address::parse_number("+8613912345678").unwrap());
    let text70 = chinese(70);
    let text3 = chinese(190);
    assert_eq!(encode_submit(&opts, &text3).unwrap().len(), 3);

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ucs2_70_chars_single_part", |b| {
        b.iter(|| encode_submit(black_box(&opts), black_box(&text70)).unwrap())
    });
    g.bench_function("ucs2_190_chars_3_parts", |b| {
        b.iter(|| encode_submit(black_box(&opts), black_box(&text3)).unwrap())
    });
    g.bench_function("count_190_chars", |b| b.iter(|| count(black_box(&text3))));
    g.finish();

    let ucs2 = hex::decode(UCS2_DELIVER).unwrap();
    let gsm7 = hex::decode(GSM7_DELIVER).unwrap();
    let full70 = encode_submit(&opts, &text70).unwrap().remove(0).pdu;
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ucs2_deliver_single_part", |b| {
        b.iter(|| Sms::parse(black_box(&ucs2)).unwrap())
    });
    g.bench_function("gsm7_deliver_single_part", |b| {
        b.iter(|| Sms::parse(black_box(&gsm7)).unwrap())
    });
    g.bench_function("ucs2_submit_70_chars", |b| {
        b.iter(|| Sms::parse(black_box(&full70)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
