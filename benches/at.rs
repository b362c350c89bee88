//! Throughput of the AT digester over realistic modem output: replies to the init and health
//! commands, a +CMGL listing with PDU lines, +CMGS references, and Huawei/+CMTI URC floods.
//! Target: >= 200 MB/s on one core (README records the measured figure). Two groups: wall time
//! (criterion's default) and this thread's CPU time, which stays meaningful on the shared
//! 2-core build box where other builds steal the core mid-run.

use criterion::measurement::{Measurement, ValueFormatter};
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

/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in nanoseconds.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical >= 1e6 {
            (1e6, "ms cpu")
        } else {
            (1e3, "us cpu")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let bytes = match t {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => *b as f64,
            _ => 1.0,
        };
        values
            .iter_mut()
            .for_each(|ns| *ns = bytes * 1e9 / *ns / 1e6);
        "MB/s per cpu"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn bench_cpu(c: &mut Criterion<ThreadCpu>) {
    let input = transcript();
    let mut g = c.benchmark_group("at_cpu");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("digest_transcript", |b| {
        b.iter(|| {
            let mut d = Digester::new();
            std::hint::black_box(digest_all(&mut d, std::hint::black_box(&input)))
        })
    });
    g.finish();
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
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_cpu
}
criterion_main!(benches, cpu);
