//! Content checking speed: one 500-character text against 10,000 rule words in ten categories.
//! Target: at least 50,000 checks per second on one core (DESIGN: content is checked at
//! acceptance, inside the request, so it must stay cheap).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smsgate::policy::content::{CategoryRules, ContentAction, RulesFile, PROHIBITED_CATEGORIES};
use smsgate::policy::RuleSet;

/// A small deterministic generator (xorshift) so every run checks the same rules and text.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn cjk(&mut self) -> char {
        char::from_u32(0x4E00 + (self.next() % 3000) as u32).unwrap_or('中')
    }

    fn word(&mut self) -> String {
        if self.next() % 3 == 0 {
            let n = 4 + self.next() % 5;
            (0..n)
                .map(|_| (b'a' + (self.next() % 26) as u8) as char)
                .collect()
        } else {
            let n = 2 + self.next() % 3;
            (0..n).map(|_| self.cjk()).collect()
        }
    }
}

fn rules(g: &mut Gen) -> RuleSet {
    let mut categories: Vec<CategoryRules> = PROHIBITED_CATEGORIES
        .iter()
        .map(|n| CategoryRules {
            name: n.to_string(),
            action: ContentAction::Block,
            words: Vec::new(),
            patterns: Vec::new(),
        })
        .collect();
    categories.push(CategoryRules {
        name: "needs_review".into(),
        action: ContentAction::Review,
        words: Vec::new(),
        patterns: Vec::new(),
    });
    for i in 0..10_000 {
        let n = categories.len();
        categories[i % n].words.push(g.word());
    }
    RuleSet::compile(RulesFile { categories }).expect("rules compile")
}

fn text(g: &mut Gen) -> String {
    // Mostly CJK with some ASCII and punctuation, like a real marketing SMS batch text.
    let mut s = String::from("【某某商城】");
    while s.chars().count() < 500 {
        match g.next() % 10 {
            0 => s.push('，'),
            1 => s.push(' '),
            2 => s.push((b'a' + (g.next() % 26) as u8) as char),
            _ => s.push(g.cjk()),
        }
    }
    s
}

fn content(c: &mut Criterion) {
    let mut g = Gen(0x5eed_1234_abcd_0001);
    let rs = rules(&mut g);
    let t = text(&mut g);
    assert_eq!(t.chars().count(), 500);
    let mut group = c.benchmark_group("content");
    group.throughput(Throughput::Elements(1));
    group.bench_function("check_500_chars_10k_rules", |b| {
        b.iter(|| rs.check(black_box(&t)))
    });
    // The normaliser alone, to see how the check's time splits.
    group.bench_function("normalize_500_chars", |b| {
        b.iter(|| smsgate::policy::normalize::normalize(black_box(&t)))
    });
    group.finish();
}

criterion_group!(benches, content);
criterion_main!(benches);
