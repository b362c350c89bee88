//! Reassembly of concatenated messages. Parts are keyed by (originating or destination address,
//! reference, total, reference width); they may arrive in any order, a duplicate seq is ignored,
//! and what is still missing can be listed at any time. Invariants: a message is returned once,
//! when its last missing part arrives; a part with an impossible seq (0 or > total) is returned
//! alone rather than held forever. Pure data structure: expiry is the caller's decision
//! (`take_incomplete`).

use std::collections::{BTreeMap, HashMap};

use super::userdata::Body;
use super::{Sms, Tpdu};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    address: String,
    reference: u16,
    total: u8,
    wide: bool,
}

/// A whole message: one SMS, or every part of a concatenated one in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// The sender (DELIVER) or recipient (SUBMIT, STATUS-REPORT), "+" for international.
    pub address: String,
    /// The concatenation reference, None for a single SMS.
    pub reference: Option<u16>,
    /// The joined text; 8-bit data parts are joined as bytes in `Body::Data`.
    pub body: Body,
    /// The parts in seq order.
    pub parts: Vec<Sms>,
}

/// A concatenated message still waiting for parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    pub address: String,
    pub reference: u16,
    pub total: u8,
    /// The seq numbers not received yet.
    pub missing: Vec<u8>,
    /// The parts received so far, in seq order.
    pub parts: Vec<Sms>,
}

/// Collects concatenated parts until their message is whole.
#[derive(Debug, Default, Clone)]
pub struct Reassembler {
    pending: HashMap<Key, BTreeMap<u8, Sms>>,
}

fn address_of(sms: &Sms) -> String {
    match &sms.tpdu {
        Tpdu::Deliver(d) => d.sender.to_string(),
        Tpdu::Submit(s) => s.recipient.to_string(),
        Tpdu::StatusReport(r) => r.recipient.to_string(),
    }
}

fn join(parts: &[Sms]) -> Body {
    let bodies: Vec<&Body> = parts
        .iter()
        .filter_map(|p| p.tpdu.user_data().map(|u| &u.body))
        .collect();
    if !bodies.is_empty() && bodies.iter().all(|b| matches!(b, Body::Data(_))) {
        let mut d = Vec::new();
        for b in bodies {
            if let Body::Data(x) = b {
                d.extend_from_slice(x);
            }
        }
        return Body::Data(d);
    }
    let mut t = String::new();
    for b in bodies {
        match b {
            Body::Text(x) => t.push_str(x),
            Body::Data(x) => t.push_str(&String::from_utf8_lossy(x)),
        }
    }
    Body::Text(t)
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Adds one SMS. Returns the whole message when this SMS completes it (at once for an SMS
    /// without concatenation), None while parts are missing or when it is a duplicate.
    pub fn push(&mut self, sms: Sms) -> Option<Assembled> {
        let address = address_of(&sms);
        let concat = sms
            .tpdu
            .user_data()
            .and_then(|u| u.udh.as_ref())
            .and_then(|h| h.concat_info());
        let Some(c) = concat.filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total) else {
            let parts = vec![sms];
            return Some(Assembled {
                address,
                reference: None,
                body: join(&parts),
                parts,
            });
        };
        let key = Key {
            address,
            reference: c.reference,
            total: c.total,
            wide: c.wide,
        };
        let slot = self.pending.entry(key.clone()).or_default();
        slot.entry(c.seq).or_insert(sms);
        if slot.len() < usize::from(c.total) {
            return None;
        }
        let parts: Vec<Sms> = self.pending.remove(&key)?.into_values().collect();
        Some(Assembled {
            address: key.address,
            reference: Some(key.reference),
            body: join(&parts),
            parts,
        })
    }

    /// Messages still waiting for parts, with the seq numbers they lack.
    pub fn incomplete(&self) -> Vec<Incomplete> {
        let mut v: Vec<Incomplete> = self
            .pending
            .iter()
            .map(|(k, parts)| Self::describe(k, parts))
            .collect();
        v.sort_by(|a, b| (&a.address, a.reference).cmp(&(&b.address, b.reference)));
        v
    }

    /// Removes and returns every incomplete message (e.g. when the caller's timeout expires).
    pub fn take_incomplete(&mut self) -> Vec<Incomplete> {
        let v = self.incomplete();
        self.pending.clear();
        v
    }

    /// Number of messages waiting for parts.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn describe(k: &Key, parts: &BTreeMap<u8, Sms>) -> Incomplete {
        Incomplete {
            address: k.address.clone(),
            reference: k.reference,
            total: k.total,
            missing: (1..=k.total).filter(|s| !parts.contains_key(s)).collect(),
            parts: parts.values().cloned().collect(),
        }
    }
}
