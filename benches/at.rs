//! Throughput of the AT digester over realistic modem output: replies to the init and health
//! commands, a +CMGL listing with PDU lines, +CMGS references, and Huawei/+CMTI URC floods.
//! Target: >= 200 MB/s on one core (README records the measured figure).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smsgate::at::Digester;

const PDU: &str = "0791683108200505F0240D91683117352446F2000891010281044323884F60597DFF0C8FD9662F4E0067616D4B8BD577ED4FE1FF0C8BF75FFD7565300290008BF7590D5236987597664B62F16D4E6D4B53F7FF1A";

fn transcript() -> Vec<u8> {
    let mut one = String::new();
    one.push_str("\r\nOK\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\n+CREG: 1,1\r\n\r\nOK\r\n");
    one.push_str("\r\n^RSSI:20\r\n\r\n^MODE:5,4\r\n\r\n+CMTI: \"SM\",7\r\n");
    one.push_str("\r\n+COPS: 0,0,\"CHINA MOBILE\",7\r\n\r\nOK\r\n");
    for i in 0..8 {
        one.push_str(&format!(
            "\r\n+CMGL: {i},1,,{}\r\n{PDU}\r\n",
            PDU.len() / 2 - 8
        ));
    }
    one.push_str("\r\nOK\r\n\r\n> ");
    one.push_str("\r\n+CMGS: 17\r\n\r\nOK\r\n\r\n+CMS ERROR: 500\r\n");
    one.push_str(&format!("\r\n+CMT: ,{}\r\n{PDU}\r\n", PDU.len() / 2 - 8));
    one.as_bytes().repeat(1 + (1 << 20) / one.len())
}

fn digest_all(d: &mut Digester, buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut events = 0;
    loop {
        let (ev, n) = d.digest(buf.get(pos..).unwrap_or_default());
        pos += n;
        if ev.is_some() {
            events += 1;
        } else if n == 0 {
            return events;
        }
    }
}

fn bench(c: &mut Criterion) {
    let input = transcript();
    let mut g = c.benchmark_group("at");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("digest_transcript", |b| {
        b.iter(|| {
            let mut d = Digester::new();
            std::hint::black_box(digest_all(&mut d, std::hint::black_box(&input)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
