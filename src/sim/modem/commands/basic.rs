//! Command group of one virtual modem: V.250 basics (echo, reset, S-registers, `I`) and
//! identity (manufacturer, model, revision, IMEI, IMSI, ICCID by the dialect's command, +CRSM,
//! +CNUM). A pure move out of the engine's one big match; the arms keep their order.
//!
//! What must always hold: an ICCID command answers only on the dialect that has it; without a
//! SIM, SIM identity commands answer `+CME ERROR: 10`.

use super::*;

impl Engine {
    /// V.250 basics and identity.
    /// `None` when the command is not one of them.
    pub(in crate::sim::modem) fn basic(&mut self, cmd: &Cmd) -> Option<Outcome> {
        use Kind::*;
        let ok = || Outcome::Ok(vec![]);
        let one = |s: String| Outcome::Ok(vec![s]);
        let p = self.profile.clone();
        Some(match (cmd.name.as_str(), &cmd.kind) {
            ("E", Exec(v)) => {
                self.lines[self.cur].echo = v != "0";
                ok()
            }
            ("V" | "Q" | "X" | "L" | "M" | "&C" | "&D" | "&W" | "&K", Exec(_)) => ok(),
            ("Z" | "&F", Exec(_)) => {
                self.lines[self.cur].echo = true;
                self.cmee = 0;
                self.cnmi = [0; 5];
                ok()
            }
            (s, Read) if s.starts_with('S') && !s.starts_with("S_") && s.len() > 1 => {
                one("000".into())
            }
            (s, Set(_)) if s.starts_with('S') && s[1..].chars().all(|c| c.is_ascii_digit()) => ok(),
            ("I", Exec(_)) => Outcome::Ok(vec![
                p.manufacturer.into(),
                p.model.into(),
                format!("Revision: {}", p.revision),
            ]),
            ("+CGMI" | "+GMI", Exec(_)) => one(p.manufacturer.into()),
            ("+CGMM" | "+GMM", Exec(_)) => one(p.model.into()),
            ("+CGMR" | "+GMR", Exec(_)) => one(p.revision.into()),
            ("+CGSN" | "+GSN", Exec(_)) => one(self.identity.imei.clone()),
            ("+GCAP", Exec(_)) => one("+GCAP: +CGSM,+DS,+ES".into()),
            (
                "+CGMI" | "+GMI" | "+CGMM" | "+GMM" | "+CGMR" | "+GMR" | "+CGSN" | "+GSN" | "+CIMI"
                | "+CNUM" | "+CCID" | "+QCCID",
                Test,
            ) => ok(),
            ("+CIMI", Exec(_)) => self
                .sim_needed(false)
                .unwrap_or_else(|| one(self.identity.imsi.clone())),
            ("+CCID", Exec(_) | Read) if p.iccid == IccidCommand::Ccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("+CCID: {}", self.identity.iccid))),
            ("+QCCID", Exec(_)) if p.iccid == IccidCommand::Qccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("+QCCID: {}", self.identity.iccid))),
            ("^ICCID", Read | Exec(_)) if p.iccid == IccidCommand::HuaweiIccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("^ICCID: {}", self.identity.iccid))),
            ("+ZGETICCID", Exec(_)) if p.iccid == IccidCommand::ZteIccid => self
                .sim_needed(false)
                .unwrap_or_else(|| one(format!("+ZGETICCID: {}", self.identity.iccid))),
            ("+CRSM", Set(a)) => {
                if let Some(o) = self.sim_needed(false) {
                    return Some(o);
                }
                let a = args(a);
                if num(&a, 0) == Some(176) && num(&a, 1) == Some(12258) {
                    // EF_ICCID is stored nibble-swapped on the card (TS 11.11 10.1.1).
                    one(format!(
                        "+CRSM: 144,0,\"{}\"",
                        swap_nibbles(&self.identity.iccid)
                    ))
                } else {
                    one("+CRSM: 106,130,\"\"".into())
                }
            }
            ("+CNUM", Exec(_)) => {
                let toa = if self.identity.number.starts_with('+') {
                    145
                } else {
                    129
                };
                self.sim_needed(false).unwrap_or_else(|| {
                    one(format!("+CNUM: \"\",\"{}\",{toa}", self.identity.number))
                })
            }
            _ => return None,
        })
    }
}

fn swap_nibbles(iccid: &str) -> String {
    let mut d: Vec<char> = iccid.chars().collect();
    if d.len() % 2 == 1 {
        d.push('F');
    }
    d.chunks(2).flat_map(|c| [c[1], c[0]]).collect()
}
