//! The acceptance decision applied the way the daemon will apply it (decide, then reserve /
//! charge / hold / audit in one transaction) on a real SQLite file: blocked words, obfuscation,
//! review, opt-out, number blacklist, signature, suffix and send window.

use jiff::Timestamp;
use rusqlite::Connection;
use smsgate::audit::VerifyReport;
use smsgate::policy::account::AccountSettings;
use smsgate::policy::content::{ContentAction, PROHIBITED_CATEGORIES};
use smsgate::policy::{
    decide, Decision, OptOutConfig, RecipientDecision, Refusal, RuleSet, SendWindow,
};
use smsgate::store::audit;
use smsgate::store::contract::{self, NewAccount, NewLot, NumberScope, ReviewDecision};
use smsgate::store::Store;

const RULES: &str = r#"
[[category]]
name = "obscenity_gambling_violence_terror"
action = "block"
words = ["casino", "赌场"]

[[category]]
name = "needs_review"
action = "review"
words = ["loan", "贷款"]
"#;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// UCS2 counting as the codec does it: 70 in one part, 67 per part when split.
fn parts(text: &str) -> u32 {
    let n = text.encode_utf16().count() as u32;
    if n <= 70 {
        1
    } else {
        n.div_ceil(67)
    }
}

struct World {
    _dir: tempfile::TempDir,
    conn: Connection,
    rules: RuleSet,
    account: i64,
    next_message: i64,
}

impl World {
    fn new(settings: AccountSettings) -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smsgate.db");
        drop(Store::open(&path).unwrap());
        let mut conn = Connection::open(&path).unwrap();
        let now = ts("2026-06-01T00:00:00Z");
        let tx = conn.transaction().unwrap();
        let account = contract::create_account(
            &tx,
            &NewAccount {
                name: "acme".into(),
                uids: vec![1000],
                gids: vec![],
                settings,
            },
            now,
        )
        .unwrap();
        contract::add_lot(
            &tx,
            account,
            &NewLot {
                quantity: 100,
                price_fen: 5000,
                purchased_at: now,
                expires_at: None,
            },
        )
        .unwrap();
        tx.commit().unwrap();
        World {
            _dir: dir,
            conn,
            rules: RuleSet::from_toml(RULES, "test").unwrap(),
            account,
            next_message: 1,
        }
    }

    fn available(&self, now: Timestamp) -> u64 {
        contract::credit_summary(&self.conn, self.account, now)
            .unwrap()
            .available
    }

    /// What the daemon will do at acceptance. Returns the decision and the message ids made.
    fn send(&mut self, recipients: &[&str], text: &str, now: Timestamp) -> (Decision, Vec<i64>) {
        let recipients: Vec<String> = recipients.iter().map(|s| s.to_string()).collect();
        let acct = contract::account(&self.conn, self.account).unwrap();
        let facts = contract::acceptance_facts(&self.conn, self.account, &recipients, now).unwrap();
        let d = decide(&acct, &facts, &self.rules, &recipients, text, now, &parts);
        let tx = self.conn.transaction().unwrap();
        let mut ids = Vec::new();
        match &d {
            Decision::Accepted(a) => {
                for r in &a.recipients {
                    if r.decision == RecipientDecision::Accept {
                        ids.push(self.next_message);
                        self.next_message += 1;
                    }
                }
                contract::reserve(&tx, self.account, a.parts, now, &ids).unwrap();
                if let Some(h) = &a.hold {
                    for &m in &ids {
                        contract::hold_for_review(&tx, m, self.account, &h.category, &h.word, now)
                            .unwrap();
                    }
                }
            }
            Decision::Refused(Refusal::BlockedContent {
                category, charge, ..
            }) => {
                let n = self.next_message;
                self.next_message += 1;
                ids.push(n);
                let per = *charge as u32; // one message row for the refused request
                contract::charge_violation(&tx, self.account, per, &[n], category, "daemon", now)
                    .unwrap();
            }
            Decision::Refused(_) => {}
        }
        tx.commit().unwrap();
        (d, ids)
    }
}

#[test]
fn blocked_word_is_refused_charged_and_blacklists() {
    let now = ts("2026-06-02T00:00:00Z");
    let mut w = World::new(AccountSettings::default());
    let (d, _) = w.send(&["13912345678"], "Visit our casino tonight", now);
    match d {
        Decision::Refused(Refusal::BlockedContent {
            category,
            word,
            charge,
            ..
        }) => {
            assert_eq!(category, "obscenity_gambling_violence_terror");
            assert_eq!(word, "casino");
            assert_eq!(charge, 1);
        }
        other => panic!("expected a block, got {other:?}"),
    }
    // Charged (used, not reserved) and blacklisted.
    let s = contract::credit_summary(&w.conn, w.account, now).unwrap();
    assert_eq!((s.available, s.used, s.reserved), (99, 1, 0));
    let acct = contract::account(&w.conn, w.account).unwrap();
    assert!(acct.blacklisted.unwrap().reason.contains("obscenity"));
    // The next, harmless request is refused whole and costs nothing.
    let (d, _) = w.send(&["13912345678"], "hello", now);
    assert!(
        matches!(d, Decision::Refused(Refusal::AccountBlacklisted { .. })),
        "{d:?}"
    );
    assert_eq!(w.available(now), 99);
    // An admin lifts it, with a reason; both changes are in the verified log.
    let tx = w.conn.transaction().unwrap();
    assert!(
        contract::lift_account_blacklist(&tx, w.account, "appeal granted", "admin:root", now)
            .unwrap()
    );
    tx.commit().unwrap();
    let (d, _) = w.send(&["13912345678"], "hello", now);
    assert!(matches!(d, Decision::Accepted(_)), "{d:?}");
    let events: Vec<String> = audit::all_records(&w.conn)
        .unwrap()
        .into_iter()
        .map(|r| r.entry.event)
        .collect();
    assert_eq!(
        events,
        vec!["charged", "account_blacklisted", "account_unblacklisted"]
    );
    assert_eq!(
        audit::verify(&w.conn).unwrap(),
        VerifyReport::Intact { records: 3 }
    );
}

#[test]
fn obfuscated_words_are_caught() {
    let rules = RuleSet::from_toml(RULES, "test").unwrap();
    for text in [
        "ｃａｓｉｎｏ",             // full-width
        "c a s i n o",              // spaced
        "c.a-s_i*n!o",              // punctuated
        "CaSiNo",                   // mixed case
        "C\u{200b}A\u{200d}SINO",   // zero-width
        "Ｃ　Ａ．Ｓ　Ｉ—Ｎ—Ｏ now", // all of it at once
        "欢迎光临赌 场",
        "赌。场",
    ] {
        let v = rules.check(text);
        assert_eq!(v.action, ContentAction::Block, "{text:?}");
        let m = v.decisive().unwrap();
        // The span points at the obfuscated word in the original text.
        let shown = &text[m.start..m.end];
        assert!(!shown.is_empty() && text.contains(shown));
    }
    for text in ["casin o", "cas1no", "occasionally"] {
        // "casin o" still matches (spaces dropped); the others must not.
        let blocked = rules.check(text).action == ContentAction::Block;
        assert_eq!(blocked, text == "casin o", "{text:?}");
    }
}

#[test]
fn review_approve_reject_and_violation() {
    let now = ts("2026-06-02T00:00:00Z");
    let mut w = World::new(AccountSettings::default());
    let mut held = Vec::new();
    for _ in 0..3 {
        let (d, ids) = w.send(&["13912345678"], "低息贷款 call us", now);
        match d {
            Decision::Accepted(a) => {
                let h = a.hold.expect("held");
                assert_eq!(h.category, "needs_review");
                assert_eq!(a.cost, 1);
            }
            other => panic!("{other:?}"),
        }
        held.push(ids[0]);
    }
    let pending = contract::pending_reviews(&w.conn).unwrap();
    assert_eq!(pending.len(), 3);
    assert_eq!(w.available(now), 97, "held messages keep their reservation");

    let tx = w.conn.transaction().unwrap();
    let r = contract::decide_review(&tx, held[0], ReviewDecision::Approve, "alice", now).unwrap();
    assert_eq!((r.refunded, r.charged), (0, 0));
    let r = contract::decide_review(&tx, held[1], ReviewDecision::Reject, "alice", now).unwrap();
    assert_eq!((r.refunded, r.charged), (1, 0));
    tx.commit().unwrap();
    assert_eq!(w.available(now), 98);
    assert!(contract::account(&w.conn, w.account)
        .unwrap()
        .blacklisted
        .is_none());

    let tx = w.conn.transaction().unwrap();
    let r = contract::decide_review(&tx, held[2], ReviewDecision::RejectAsViolation, "bob", now)
        .unwrap();
    assert_eq!((r.refunded, r.charged), (0, 1));
    // Deciding twice is refused.
    assert!(matches!(
        contract::decide_review(&tx, held[2], ReviewDecision::Approve, "bob", now),
        Err(contract::ContractError::ReviewNotPending(_))
    ));
    tx.commit().unwrap();
    let s = contract::credit_summary(&w.conn, w.account, now).unwrap();
    assert_eq!((s.available, s.reserved, s.used), (98, 1, 1));
    assert!(contract::account(&w.conn, w.account)
        .unwrap()
        .blacklisted
        .is_some());
    assert!(contract::pending_reviews(&w.conn).unwrap().is_empty());
    assert!(matches!(
        audit::verify(&w.conn).unwrap(),
        VerifyReport::Intact { .. }
    ));
}

#[test]
fn td_reply_stops_further_sends_without_charge() {
    let now = ts("2026-06-02T00:00:00Z");
    let mut w = World::new(AccountSettings::default());
    let (d, _) = w.send(&["+8613912345678", "13800000000"], "hello", now);
    assert!(matches!(d, Decision::Accepted(_)));
    let tx = w.conn.transaction().unwrap();
    contract::record_send(&tx, w.account, "+8613912345678", now).unwrap();
    tx.commit().unwrap();
    assert_eq!(w.available(now), 98);

    // The recipient replies "ＴＤ" (full-width) from its international form.
    let later = ts("2026-06-03T00:00:00Z");
    let tx = w.conn.transaction().unwrap();
    let applied = contract::apply_inbound_opt_out(
        &tx,
        "008613912345678",
        " ＴＤ ",
        &OptOutConfig::default(),
        later,
    )
    .unwrap();
    assert_eq!(applied, Some(vec![w.account]));
    // Not an unsubscribe word: nothing happens.
    assert_eq!(
        contract::apply_inbound_opt_out(
            &tx,
            "13912345678",
            "thanks",
            &OptOutConfig::default(),
            later
        )
        .unwrap(),
        None
    );
    tx.commit().unwrap();

    let (d, ids) = w.send(&["13912345678", "13800000000"], "hello again", later);
    match d {
        Decision::Accepted(a) => {
            assert_eq!(a.recipients[0].decision, RecipientDecision::RefusedOptedOut);
            assert_eq!(a.recipients[1].decision, RecipientDecision::Accept);
            assert_eq!(a.cost, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        w.available(later),
        97,
        "only the other recipient is charged"
    );

    // Sending only to the opted-out number is refused per recipient and costs nothing.
    let (d, _) = w.send(&["13912345678"], "hello", later);
    assert!(
        matches!(d, Decision::Refused(Refusal::AllRecipientsRefused { .. })),
        "{d:?}"
    );
    assert_eq!(w.available(later), 97);

    // The list shows it; an admin can lift it on renewed consent (audited).
    let list = contract::opt_outs(&w.conn, w.account).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].number, "+8613912345678",
        "stored as its number::key"
    );
    let tx = w.conn.transaction().unwrap();
    assert!(contract::remove_opt_out(
        &tx,
        w.account,
        "+8613912345678",
        "written consent",
        "admin:root",
        later
    )
    .unwrap());
    tx.commit().unwrap();
    let (d, _) = w.send(&["13912345678"], "hello", later);
    assert!(matches!(d, Decision::Accepted(_)), "{d:?}");
    let events: Vec<String> = audit::all_records(&w.conn)
        .unwrap()
        .into_iter()
        .map(|r| r.entry.event)
        .collect();
    assert_eq!(events, vec!["opt_out", "opt_in"]);
}

#[test]
fn opt_out_with_no_recent_sender_applies_to_all_accounts() {
    let now = ts("2026-06-02T00:00:00Z");
    let mut w = World::new(AccountSettings::default());
    let tx = w.conn.transaction().unwrap();
    let other = contract::create_account(
        &tx,
        &NewAccount {
            name: "other".into(),
            ..NewAccount::default()
        },
        now,
    )
    .unwrap();
    // "other" messaged the number 40 days ago: outside the 30-day look-back.
    contract::record_send(&tx, other, "13912345678", ts("2026-04-23T00:00:00Z")).unwrap();
    let applied =
        contract::apply_inbound_opt_out(&tx, "13912345678", "退订", &OptOutConfig::default(), now)
            .unwrap();
    tx.commit().unwrap();
    assert_eq!(applied, Some(vec![w.account, other]));
    assert!(contract::is_opted_out(&w.conn, other, "+8613912345678").unwrap());
}

#[test]
fn blacklisted_numbers_are_refused_per_recipient() {
    let now = ts("2026-06-02T00:00:00Z");
    let mut w = World::new(AccountSettings::default());
    let tx = w.conn.transaction().unwrap();
    assert!(contract::add_number_blacklist(
        &tx,
        NumberScope::Global,
        "+86 139 1234 5678",
        "complaint",
        "admin:root",
        now
    )
    .unwrap());
    tx.commit().unwrap();
    assert_eq!(
        contract::number_blacklist(&w.conn, NumberScope::Global).unwrap()[0].number,
        "+8613912345678",
        "stored as its number::key"
    );
    let (d, _) = w.send(&["13912345678", "13800000000"], "hi", now);
    let Decision::Accepted(a) = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        a.recipients[0].decision,
        RecipientDecision::RefusedBlacklisted
    );
    assert_eq!(a.cost, 1);
    let tx = w.conn.transaction().unwrap();
    assert!(contract::remove_number_blacklist(
        &tx,
        NumberScope::Global,
        "13912345678",
        "resolved",
        "admin:root",
        now
    )
    .unwrap());
    tx.commit().unwrap();
    let (d, _) = w.send(&["13912345678"], "hi", now);
    assert!(matches!(d, Decision::Accepted(_)));
}

#[test]
fn signature_suffix_window_and_credit() {
    let settings = AccountSettings {
        signature_required: true,
        unsubscribe_suffix: Some("回T退订".into()),
        send_window: Some(SendWindow::parse("08:00-22:00 Asia/Shanghai").unwrap()),
    };
    let mut w = World::new(settings);
    // 23:30 in Shanghai.
    let night = ts("2026-06-02T15:30:00Z");
    let (d, _) = w.send(&["13912345678"], "no signature", night);
    assert!(matches!(d, Decision::Refused(Refusal::MissingSignature)));
    let (d, _) = w.send(&["13912345678"], "【ACME】您好", night);
    let Decision::Accepted(a) = d else {
        panic!("{d:?}")
    };
    assert_eq!(a.final_text, "【ACME】您好回T退订");
    assert_eq!(a.not_before, Some(ts("2026-06-03T00:00:00Z")));
    // 3 parts x 40 recipients = 120 > 99 available: refused whole, with the shortfall.
    let long = format!("【ACME】{}", "字".repeat(150));
    assert_eq!(parts(&format!("{long}回T退订")), 3);
    let many: Vec<String> = (0..40).map(|i| format!("139000000{i:02}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (d, _) = w.send(&many, &long, ts("2026-06-03T04:00:00Z"));
    assert_eq!(
        d,
        Decision::Refused(Refusal::InsufficientCredit {
            needed: 120,
            available: 99,
            shortfall: 21
        })
    );
    assert_eq!(w.available(ts("2026-06-03T04:00:00Z")), 99);
}

#[test]
fn shipped_example_rules_name_the_nine_categories() {
    let text = include_str!("../rules.example.toml");
    let file = smsgate::policy::content::RulesFile::parse(text, "rules.example.toml").unwrap();
    for name in PROHIBITED_CATEGORIES {
        let c = file
            .categories
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!(c.action, ContentAction::Block);
    }
    let rules = RuleSet::compile(file).unwrap();
    assert_eq!(
        rules.check("P L A C E H O L D E R - C U L T").action,
        ContentAction::Block
    );
}
