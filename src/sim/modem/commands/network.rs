//! Command group of one virtual modem: error reporting (+CMEE), the SIM's PIN state, signal,
//! registration (+CREG/+CGREG/+CEREG), packet-domain attach (+CGATT), operator (+COPS) and the
//! service centre (+CSCA). Moved out of the engine's one big match; the arms keep their order.
//!
//! What must always hold: what these answer is the modem's state (SIM present, registered,
//! signal) as the control socket last set it.

use super::*;

impl Engine {
    /// Error reporting, SIM state, signal, registration, operator and SMSC.
    /// `None` when the command is not one of them.
    pub(in crate::sim::modem) fn network(&mut self, cmd: &Cmd) -> Option<Outcome> {
        use Kind::*;
        let ok = || Outcome::Ok(vec![]);
        let one = |s: String| Outcome::Ok(vec![s]);
        Some(match (cmd.name.as_str(), &cmd.kind) {
            ("+CMEE", Set(v)) => match v.trim().parse::<u8>() {
                Ok(n @ 0..=2) => {
                    self.cmee = n;
                    ok()
                }
                _ => Outcome::Fail(Fail::Cme(50)),
            },
            ("+CMEE", Read) => one(format!("+CMEE: {}", self.cmee)),
            ("+CMEE", Test) => one("+CMEE: (0-2)".into()),
            ("+CPIN", Read) => {
                if self.sim_present {
                    one("+CPIN: READY".into())
                } else {
                    Outcome::Fail(Fail::Cme(10))
                }
            }
            ("+CPIN", Test) => ok(),
            ("+CSQ", Exec(_)) => {
                let (r, b) = if self.sim_present && self.registered {
                    (self.rssi, 99)
                } else {
                    (99, 99)
                };
                one(format!("+CSQ: {r},{b}"))
            }
            ("+CSQ", Test) => one("+CSQ: (0-31,99),(0-7,99)".into()),
            (reg @ ("+CREG" | "+CGREG" | "+CEREG"), kind) => {
                let k = match reg {
                    "+CREG" => 0,
                    "+CGREG" => 1,
                    _ => 2,
                };
                match kind {
                    Set(v) => match v.trim().parse::<u8>() {
                        Ok(n @ 0..=2) => {
                            self.reg_n[k] = n;
                            ok()
                        }
                        _ => Outcome::Fail(Fail::Cme(50)),
                    },
                    Read => {
                        let stat = if self.registered {
                            1
                        } else if self.sim_present {
                            2
                        } else {
                            0
                        };
                        if self.reg_n[k] == 2 && self.registered {
                            one(format!("{reg}: 2,{stat},\"24A3\",\"0C91E204\""))
                        } else {
                            one(format!("{reg}: {},{stat}", self.reg_n[k]))
                        }
                    }
                    Test => one(format!("{reg}: (0-2)")),
                    Exec(_) => Outcome::Fail(Fail::Error),
                }
            }
            // PS attach state (27.007 10.1.9). The virtual modem is attached exactly when it is
            // registered. gammu asks for it in every GSM_GetNetworkInfo (gammu-smsd's network
            // check); a module without it is a 2G-only relic, and gammu logs the ERROR as an
            // "UNKNOWN response" each time.
            ("+CGATT", Read) => one(format!("+CGATT: {}", u8::from(self.registered))),
            ("+CGATT", Test) => one("+CGATT: (0,1)".into()),
            ("+COPS", Read) => {
                if self.registered {
                    one(format!(
                        "+COPS: 0,0,\"{}\",0",
                        self.identity.carrier.operator_name()
                    ))
                } else {
                    one("+COPS: 0".into())
                }
            }
            ("+COPS", Set(_)) => ok(),
            ("+COPS", Test) => one(format!(
                "+COPS: (2,\"{}\",\"\",\"{}\",0),,(0-4),(0-2)",
                self.identity.carrier.operator_name(),
                &self.identity.imsi[..5]
            )),
            ("+CSCA", Read) => self
                .sim_needed(true)
                .unwrap_or_else(|| one(format!("+CSCA: \"{}\",145", self.smsc))),
            ("+CSCA", Set(v)) => {
                let a = args(v);
                match a.first() {
                    Some(n) if !n.is_empty() => {
                        self.smsc = n.clone();
                        ok()
                    }
                    _ => Outcome::Fail(Fail::Cms(304)),
                }
            }
            ("+CSCA", Test) => ok(),
            _ => return None,
        })
    }
}
