//! Command group of one virtual modem: the rest of 27.007 a driver may touch (USSD, +CFUN,
//! calls, battery, clock, phone book) and the dialect's own vendor commands, answered from its
//! data; anything else is `ERROR`. A pure move out of the engine's one big match.
//!
//! What must always hold: a command no group knows answers `ERROR`, never nothing.

use super::*;

impl Engine {
    /// The remaining commands and the dialect's vendor commands; `ERROR` for anything else.
    pub(in crate::sim::modem) fn other(&mut self, cmd: &Cmd) -> Outcome {
        use Kind::*;
        let ok = || Outcome::Ok(vec![]);
        let one = |s: String| Outcome::Ok(vec![s]);
        let p = self.profile.clone();
        match (cmd.name.as_str(), &cmd.kind) {
            ("+CUSD", Set(v)) => {
                let a = args(v);
                if a.get(1).is_some_and(|s| !s.is_empty()) {
                    if !self.registered {
                        return Outcome::Fail(Fail::Cme(30));
                    }
                    // The answer comes later as +CUSD URC (the driver arms the timer).
                    self.pending_ussd = true;
                }
                ok()
            }
            ("+CUSD", Read) => one("+CUSD: 1".into()),
            ("+CUSD", Test) => one("+CUSD: (0-2)".into()),
            ("+CFUN", Read) => one("+CFUN: 1".into()),
            ("+CFUN", Set(_)) => ok(),
            ("+CFUN", Test) => one("+CFUN: (0,1,4),(0-1)".into()),
            (
                "+CLIP" | "+CRC" | "+CVHU" | "+CLIR" | "+CMER" | "+CGEREP" | "+CTZR" | "+IFC"
                | "+IPR" | "+ICF",
                Set(_),
            ) => ok(),
            ("+CHUP" | "H", Exec(_)) | ("+CHUP", Test) => ok(),
            ("+CBC", Exec(_)) => one("+CBC: 0,100,4200".into()),
            ("+CPAS", Exec(_)) => one("+CPAS: 0".into()),
            ("+CCLK", Read) => {
                let z = Timestamp::now()
                    .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8)));
                one(format!("+CCLK: \"{}\"", z.strftime("%y/%m/%d,%H:%M:%S+32")))
            }
            ("+CPBS", Test) => one("+CPBS: (\"SM\")".into()),
            ("+CPBS", Read) => one("+CPBS: \"SM\",0,250".into()),
            ("+CPBS", Set(_)) => ok(),
            ("+CPBR", Test) => one("+CPBR: (1-250),40,14".into()),
            (name, Set(_) | Exec(_)) => match p.vendor_commands.iter().find(|(n, _)| *n == name) {
                Some((_, "")) => ok(),
                Some((_, line)) => one((*line).to_string()),
                None => Outcome::Fail(Fail::Error),
            },
            _ => Outcome::Fail(Fail::Error),
        }
    }
}
