//! Command group of one virtual modem: SMS (27.005): format, character set, indications,
//! service, storage (+CPMS), sending (+CMGS/+CMGW, the `^HCMGS` text mode of PHS modules),
//! reading, listing and deleting. A pure move out of the engine's one big match; the arms keep
//! their order (the `^HCMGS` dialects' refusal of +CMGS comes before the PDU-mode send).
//!
//! What must always hold: text-mode reads and listings answer in the 27.005 text form on every
//! dialect; a send is checked in `submit.rs` once its prompt input arrives.

use super::*;

impl Engine {
    /// The SMS commands of 27.005 and the PHS text-mode send.
    /// `None` when the command is not one of them.
    pub(in crate::sim::modem) fn messages(&mut self, cmd: &Cmd) -> Option<Outcome> {
        use Kind::*;
        let ok = || Outcome::Ok(vec![]);
        let one = |s: String| Outcome::Ok(vec![s]);
        let p = self.profile.clone();
        Some(match (cmd.name.as_str(), &cmd.kind) {
            ("+CMGF", Set(v)) => match v.trim() {
                "0" | "" => {
                    self.cmgf = 0;
                    ok()
                }
                "1" => {
                    self.cmgf = 1;
                    ok()
                }
                _ => Outcome::Fail(Fail::Cms(302)),
            },
            ("+CMGF", Read) => one(format!("+CMGF: {}", self.cmgf)),
            ("+CMGF", Test) => one("+CMGF: (0,1)".into()),
            ("+CSCS", Set(v)) => {
                let a = args(v);
                match a.first().map(|s| s.to_ascii_uppercase()) {
                    Some(cs)
                        if ["IRA", "GSM", "UCS2", "HEX", "8859-1", "PCCP437"]
                            .contains(&cs.as_str()) =>
                    {
                        self.cscs = cs;
                        ok()
                    }
                    _ => Outcome::Fail(Fail::Cme(4)),
                }
            }
            ("+CSCS", Read) => one(format!("+CSCS: \"{}\"", self.cscs)),
            ("+CSCS", Test) => one("+CSCS: (\"IRA\",\"GSM\",\"UCS2\")".into()),
            ("+CNMI", Set(v)) => {
                let a = args(v);
                let limits = [2, 3, 3, 2, 1];
                let mut new = self.cnmi;
                for (i, lim) in limits.iter().enumerate() {
                    match a.get(i).map(String::as_str) {
                        None | Some("") => {}
                        Some(s) => match s.parse::<u8>() {
                            Ok(n) if n <= *lim => new[i] = n,
                            _ => return Some(Outcome::Fail(Fail::Cms(303))),
                        },
                    }
                }
                self.cnmi = new;
                ok()
            }
            ("+CNMI", Read) => {
                let c = self.cnmi;
                one(format!(
                    "+CNMI: {},{},{},{},{}",
                    c[0], c[1], c[2], c[3], c[4]
                ))
            }
            ("+CNMI", Test) => one("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)".into()),
            ("+CSMS", Set(v)) => match v.trim() {
                "0" | "1" => {
                    self.csms = u8::from(v.trim() == "1");
                    one("+CSMS: 1,1,1".into())
                }
                _ => Outcome::Fail(Fail::Cms(303)),
            },
            ("+CSMS", Read) => one(format!("+CSMS: {},1,1,1", self.csms)),
            ("+CSMS", Test) => one("+CSMS: (0,1)".into()),
            ("+CNMA", Exec(_) | Set(_)) => {
                // Phase 2+ (+CSMS=1): each +CMT / +CDS routed to the TE awaits one +CNMA.
                if self.csms == 1 && self.cnma_pending > 0 {
                    self.cnma_pending -= 1;
                    ok()
                } else {
                    Outcome::Fail(Fail::Cms(340))
                }
            }
            ("+CSMP", Read) => one("+CSMP: 17,167,0,0".into()),
            ("+CSMP", Set(_)) => ok(),
            ("+CPMS", Test) => {
                one("+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")".into())
            }
            ("+CPMS", Read) => self
                .sim_needed(true)
                .unwrap_or_else(|| one(self.cpms_line(true))),
            ("+CPMS", Set(v)) => {
                if let Some(o) = self.sim_needed(true) {
                    return Some(o);
                }
                let a = args(v);
                let mut mems = self.mems;
                for (i, name) in a.iter().take(3).enumerate() {
                    match MEMORIES.iter().position(|m| m.eq_ignore_ascii_case(name)) {
                        // "SR" holds status reports: read and delete (<mem1>) only.
                        Some(SR) if i > 0 => return Some(Outcome::Fail(Fail::Cms(302))),
                        Some(m) => mems[i] = m,
                        None => return Some(Outcome::Fail(Fail::Cms(302))),
                    }
                }
                self.mems = mems;
                one(self.cpms_line(false))
            }
            ("+CMMS", Set(v)) => match v.trim().parse::<u8>() {
                Ok(n @ 0..=2) => {
                    self.cmms = n;
                    ok()
                }
                _ => Outcome::Fail(Fail::Cms(303)),
            },
            ("+CMMS", Read) => one(format!("+CMMS: {}", self.cmms)),
            ("+CMMS", Test) => one("+CMMS: (0-2)".into()),
            ("^HSMSSS", Set(v)) if p.send == SendCommand::Hcmgs => {
                let a = args(v);
                let mut new = self.hsmsss;
                for (i, slot) in new.iter_mut().enumerate() {
                    match a.get(i).map(String::as_str) {
                        None | Some("") => {}
                        Some(s) => match s.parse::<u8>() {
                            Ok(n) if i != 2 || n == 1 || n == 6 => *slot = n,
                            _ => return Some(Outcome::Fail(Fail::Cms(303))),
                        },
                    }
                }
                self.hsmsss = new;
                ok()
            }
            ("^HSMSSS", Read) if p.send == SendCommand::Hcmgs => {
                let h = self.hsmsss;
                one(format!("^HSMSSS: {},{},{},{}", h[0], h[1], h[2], h[3]))
            }
            ("^HSMSSS", Test) if p.send == SendCommand::Hcmgs => {
                one("^HSMSSS: (0,1),(0-3),(1,6),(0-3)".into())
            }
            ("^HCMGS", Test) if p.send == SendCommand::Hcmgs => ok(),
            ("^HCMGS", Set(v)) if p.send == SendCommand::Hcmgs => {
                if let Some(o) = self.sim_needed(true) {
                    return Some(o);
                }
                if self.cmgf != 1 {
                    // ^HCMGS is the text-mode command: in PDU mode it is not allowed.
                    return Some(Outcome::Fail(Fail::Cms(302)));
                }
                let to = args(v).into_iter().next().unwrap_or_default();
                // Digits only: PHS numbers are national (type 0x81); a "+" is not taken.
                if to.is_empty() || to.len() > 20 || !to.bytes().all(|b| b.is_ascii_digit()) {
                    return Some(Outcome::Fail(Fail::Cms(305)));
                }
                Outcome::Prompt(
                    PromptFor::Text {
                        to,
                        ucs2: self.hsmsss[2] == 6,
                    },
                    0,
                )
            }
            // Text-mode modules have no PDU-mode +CMGS (27.005 "operation not supported").
            ("+CMGS", Set(_)) if p.send == SendCommand::Hcmgs => Outcome::Fail(Fail::Cms(303)),
            ("+CMGS" | "+CMGW", Test) => ok(),
            (name @ ("+CMGS" | "+CMGW"), Set(v)) => {
                let send = (name == "+CMGS").then_some(SendCommand::Cmgs);
                if let Some(o) = self.sim_needed(true) {
                    return Some(o);
                }
                if self.cmgf != 0 {
                    // Text mode is outside what this sim does: it speaks PDU mode only.
                    return Some(Outcome::Fail(Fail::Cms(302)));
                }
                match num(&args(v), 0) {
                    Some(n @ 7..=176) => {
                        Outcome::Prompt(send.map_or(PromptFor::Write, PromptFor::Send), n as usize)
                    }
                    _ => Outcome::Fail(Fail::Cms(304)),
                }
            }
            ("^HCMGR", Set(v)) if p.send == SendCommand::Hcmgs => {
                if let Some(o) = self.sim_needed(true) {
                    return Some(o);
                }
                if self.cmgf != 1 {
                    // Like ^HCMGS, the CDMA read belongs to text mode.
                    return Some(Outcome::Fail(Fail::Cms(302)));
                }
                let m = self.mems[0];
                let slot = num(&args(v), 0)
                    .and_then(|i| (i as usize).checked_sub(1))
                    .and_then(|i| self.storage[m].get_mut(i));
                match slot {
                    None => Outcome::Fail(Fail::Cms(321)),
                    Some(None) => Outcome::Ok(vec![]),
                    Some(Some(s)) => match hcmgr_entry(s) {
                        Some(bytes) => {
                            if s.stat == 0 {
                                s.stat = 1;
                            }
                            Outcome::Raw(bytes)
                        }
                        // A status report has no CDMA text form.
                        None => Outcome::Fail(Fail::Cms(321)),
                    },
                }
            }
            ("+CMGL", Test) => one("+CMGL: (0-4)".into()),
            ("+CMGL", Set(_) | Exec(_)) => {
                if let Some(o) = self.sim_needed(true) {
                    return Some(o);
                }
                let want = match &cmd.kind {
                    Set(v) => match v.trim().trim_matches('"') {
                        "" => 0,
                        s => match text_stat_code(s).or_else(|| s.parse::<u8>().ok()) {
                            Some(n @ 0..=4) => n,
                            _ => return Some(Outcome::Fail(Fail::Cms(302))),
                        },
                    },
                    _ => 0,
                };
                let text_mode = self.cmgf == 1;
                let m = self.mems[0];
                let mut lines = Vec::new();
                for (i, slot) in self.storage[m].iter_mut().enumerate() {
                    if let Some(s) = slot {
                        if want == 4 || s.stat == want {
                            lines.extend(list_line(text_mode, i + 1, s, "+CMGL"));
                            if s.stat == 0 {
                                s.stat = 1;
                            }
                        }
                    }
                }
                Outcome::Ok(lines)
            }
            ("+CMGR", Set(v)) => {
                if let Some(o) = self.sim_needed(true) {
                    return Some(o);
                }
                let text_mode = self.cmgf == 1;
                let m = self.mems[0];
                let slot = num(&args(v), 0)
                    .and_then(|i| (i as usize).checked_sub(1))
                    .and_then(|i| self.storage[m].get_mut(i));
                match slot {
                    None => Outcome::Fail(Fail::Cms(321)),
                    Some(None) => Outcome::Ok(vec![]),
                    Some(Some(s)) => {
                        let lines = list_line(text_mode, 0, s, "+CMGR");
                        if s.stat == 0 {
                            s.stat = 1;
                        }
                        Outcome::Ok(lines)
                    }
                }
            }
            ("+CMGD", Test) => one("+CMGD: (1-30),(0-4)".into()),
            ("+CMGD", Set(v)) => {
                if let Some(o) = self.sim_needed(true) {
                    return Some(o);
                }
                let a = args(v);
                let m = self.mems[0];
                let flag = num(&a, 1).unwrap_or(0);
                if flag > 0 {
                    // 1 read, 2 read+sent, 3 read+sent+unsent, 4 all.
                    for slot in self.storage[m].iter_mut() {
                        if slot.as_ref().is_some_and(|s| {
                            flag == 4
                                || s.stat == 1
                                || (flag >= 2 && s.stat == 3)
                                || (flag >= 3 && s.stat == 2)
                        }) {
                            *slot = None;
                        }
                    }
                    return Some(ok());
                }
                match num(&a, 0)
                    .and_then(|i| (i as usize).checked_sub(1))
                    .and_then(|i| self.storage[m].get_mut(i))
                {
                    Some(slot) => {
                        *slot = None;
                        ok()
                    }
                    None => Outcome::Fail(Fail::Cms(321)),
                }
            }
            _ => return None,
        })
    }
}
