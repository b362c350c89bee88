//! The outside world acting on one virtual modem: timers the driver armed firing (late answers,
//! submits reaching the network, status reports, inbound SMS), vendor chatter, injected inbound
//! messages, network and SIM changes, power-on and the boot burst.
//!
//! What must always hold: time never passes inside the engine (the driver calls [`Engine::fire`]);
//! unsolicited lines wait while a command or a prompt is in progress.

use super::*;

impl Engine {
    /// A timer armed earlier expired.
    pub fn fire(&mut self, timer: Timer) -> Vec<Action> {
        let mut out = Vec::new();
        match timer {
            Timer::SubmitDone {
                port,
                frame,
                mr,
                fail,
                send,
            } => {
                self.cur = port.min(self.lines.len() - 1);
                let answer = if let Some(cms) = fail {
                    self.counters.failed += 1;
                    out.push(Action::Event(json!({"event": "fault", "kind": "cms", "cms": cms, "pdu": hex::encode_upper(&frame.bytes)})));
                    self.fail_line(Fail::Cms(cms))
                } else {
                    self.counters.submitted += 1;
                    let tag = match send {
                        SendCommand::Cmgs => "+CMGS",
                        SendCommand::Hcmgs => "^HCMGS",
                    };
                    let mut ev =
                        json!({"event": "cmgs", "pdu": hex::encode_upper(&frame.bytes), "mr": mr});
                    if let (Some(obj), Value::Object(decoded)) =
                        (ev.as_object_mut(), sms::decode_for_log(&frame.bytes))
                    {
                        obj.extend(decoded);
                    }
                    out.push(Action::Event(ev));
                    if frame.status_report {
                        out.push(Action::Arm(
                            self.report_delay,
                            Timer::StatusReport {
                                mr,
                                recipient: frame.recipient.clone(),
                                recipient_toa: frame.recipient_toa,
                                submitted: Timestamp::now(),
                            },
                        ));
                    }
                    if std::mem::take(&mut self.unplug_after_submit) {
                        // The network has the part; the port dies before "+CMGS:" is written.
                        out.push(Action::Event(
                            json!({"event": "fault", "kind": "unplug_after_submit", "mr": mr}),
                        ));
                        out.push(Action::Unplug);
                        self.lines[self.cur].mode = Mode::Command;
                        return out;
                    }
                    let mut w = crlf(&format!("{tag}: {mr}"));
                    w.extend(crlf("OK"));
                    w
                };
                self.answer(&mut out, answer);
                self.process(&mut out);
            }
            Timer::Answer { port, bytes } => {
                self.cur = port.min(self.lines.len() - 1);
                self.lines[self.cur].mode = Mode::Command;
                out.push(Action::Write(self.cur, bytes));
                self.process(&mut out);
            }
            Timer::StatusReport {
                mr,
                recipient,
                recipient_toa,
                submitted,
            } => {
                self.counters.status_reports += 1;
                let sr = sms::build_status_report(
                    &self.smsc,
                    mr,
                    &recipient,
                    recipient_toa,
                    submitted,
                    Timestamp::now(),
                    self.report_status,
                );
                let mut ev = json!({"event": "status_report", "mr": mr, "pdu": sr.hex(), "status": self.report_status});
                let ds = self.cnmi[3];
                if ds == 1 && self.te_listening {
                    let mut w = crlf(&format!("+CDS: {}", sr.tpdu_len));
                    w.extend(sr.hex().as_bytes());
                    w.extend(b"\r\n");
                    self.urc(&mut out, w);
                    ev["delivery"] = json!("cds");
                    if self.csms == 1 {
                        self.cnma_pending += 1;
                    }
                } else if ds == 2 || !self.te_listening {
                    // ds=2 stores and announces; a report nobody can receive (no client has
                    // the port open, or it is unplugged) is stored as well, whatever ds says,
                    // so a driver finds it with AT+CPMS="SR" and +CMGL at start-up.
                    let stored = Stored {
                        stat: 0,
                        tpdu_len: sr.tpdu_len,
                        pdu: sr.bytes,
                    };
                    match self.store_in(SR, stored) {
                        Some(idx) => {
                            if ds == 2 {
                                self.urc(&mut out, crlf(&format!("+CDSI: \"SR\",{idx}")));
                            }
                            ev["delivery"] = json!(if ds == 2 { "cdsi" } else { "stored" });
                            ev["memory"] = json!("SR");
                            ev["index"] = json!(idx);
                        }
                        None => ev["delivery"] = json!("dropped-memory-full"),
                    }
                } else {
                    ev["delivery"] = json!("dropped-cnmi");
                }
                out.push(Action::Event(ev));
            }
            Timer::Ussd => {
                let text = format!("Balance: {}.00 CNY", 50 + self.rng.random_range(0..50));
                self.urc(&mut out, crlf(&format!("+CUSD: 0,\"{text}\",15")));
            }
            Timer::TextDone {
                port,
                to,
                text,
                mr,
                fail,
            } => {
                let port = port.min(self.lines.len() - 1);
                // Real modules print these without a space after the colon ("^HCMGSS:9").
                if let Some(cause) = fail {
                    self.counters.failed += 1;
                    out.push(Action::Event(
                        json!({"event": "fault", "kind": "hcmgsf", "cause": cause, "to": to}),
                    ));
                    self.urc_to(port, &mut out, crlf(&format!("^HCMGSF:{cause}")));
                } else {
                    self.counters.submitted += 1;
                    out.push(Action::Event(
                        json!({"event": "hcmgs", "to": to, "text": text, "mr": mr}),
                    ));
                    if std::mem::take(&mut self.unplug_after_submit) {
                        // The network has the text; the port dies before ^HCMGSS is written.
                        out.push(Action::Event(
                            json!({"event": "fault", "kind": "unplug_after_submit", "mr": mr}),
                        ));
                        out.push(Action::Unplug);
                        return out;
                    }
                    self.urc_to(port, &mut out, crlf(&format!("^HCMGSS:{mr}")));
                }
            }
        }
        out
    }

    /// One line of vendor chatter (Huawei ^RSSI ...), if the dialect has any.
    pub fn chatter(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.profile.chatter.is_empty() {
            return out;
        }
        let i = self.rng.random_range(0..self.profile.chatter.len());
        let line = self.profile.chatter[i].replace("{rssi}", &self.rssi.to_string());
        self.urc(&mut out, crlf(&line));
        out
    }

    /// The network delivers `text` from `from`: +CMT, or +CMTI after storing, per +CNMI mt.
    /// A text-mode (`^HCMGS`) module in `AT+CMGF=1` with mt=2 routes it as `^HCMT` instead.
    pub fn inject(&mut self, from: &str, text: &str) -> Vec<Action> {
        if self.profile.send == SendCommand::Hcmgs && self.cmgf == 1 && self.cnmi[1] >= 2 {
            return self.inject_hcmt(from, text);
        }
        let mut out = Vec::new();
        self.concat_ref = self.concat_ref.wrapping_add(1);
        let parts = sms::build_deliver(
            &self.smsc,
            from,
            self.profile.number_toa,
            text,
            Timestamp::now(),
            self.concat_ref,
        );
        let total = parts.len();
        for (i, p) in parts.into_iter().enumerate() {
            self.counters.inbound += 1;
            let mut ev = json!({"event": "inbound", "from": from, "part": i + 1, "parts": total, "pdu": p.hex()});
            if self.cnmi[1] >= 2 {
                let mut w = crlf(&format!("+CMT: ,{}", p.tpdu_len));
                w.extend(p.hex().as_bytes());
                w.extend(b"\r\n");
                self.urc(&mut out, w);
                ev["delivery"] = json!("cmt");
                if self.csms == 1 {
                    self.cnma_pending += 1;
                }
            } else {
                match self.store(
                    2,
                    Stored {
                        stat: 0,
                        tpdu_len: p.tpdu_len,
                        pdu: p.bytes,
                    },
                ) {
                    Some(idx) => {
                        let mem = MEMORIES[self.mems[2]];
                        if self.cnmi[1] == 1 {
                            self.urc(&mut out, crlf(&format!("+CMTI: \"{mem}\",{idx}")));
                        }
                        ev["delivery"] = json!("cmti");
                        ev["memory"] = json!(mem);
                        ev["index"] = json!(idx);
                    }
                    None => {
                        ev["delivery"] = json!("rejected-memory-full");
                    }
                }
            }
            out.push(Action::Event(ev));
        }
        out
    }

    /// `^HCMT:<oa>,<yyyy>,<mm>,<dd>,<hh>,<mi>,<ss>,<lang>,<fmt>,<length>,<prt>,<prv>,<type>,<stat>`
    /// CR LF, then <length> octets of text (fmt 1 ASCII, 6 UCS2 big-endian) and the same end
    /// marker the send side uses (1A, or 00 1A for UCS2), as Huawei's CDMA AT manuals show it.
    /// CDMA text mode has no concatenation header: a long text comes as 70-character pieces.
    pub(in crate::sim::modem) fn inject_hcmt(&mut self, from: &str, text: &str) -> Vec<Action> {
        let mut out = Vec::new();
        let oa = from.trim_start_matches('+');
        let ascii = text.is_ascii();
        let z = Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8)));
        let when = z.strftime("%Y,%m,%d,%H,%M,%S").to_string();
        let mut pieces: Vec<String> = Vec::new();
        let mut cur = String::new();
        let limit = if ascii { 160 } else { 70 };
        for c in text.chars() {
            if cur.encode_utf16().count() + c.len_utf16() > limit {
                pieces.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
        pieces.push(cur);
        let total = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            self.counters.inbound += 1;
            let (fmt, data, end): (u8, Vec<u8>, &[u8]) = if ascii {
                (1, piece.clone().into_bytes(), &[0x1A])
            } else {
                let d = piece.encode_utf16().flat_map(u16::to_be_bytes).collect();
                (6, d, &[0x00, 0x1A])
            };
            let mut w = crlf(&format!("^HCMT:{oa},{when},0,{fmt},{},0,0,0,0", data.len()));
            w.extend(&data);
            w.extend(end);
            w.extend(b"\r\n");
            self.urc(&mut out, w);
            out.push(Action::Event(json!({"event": "inbound", "from": from, "part": i + 1, "parts": total, "text": piece, "delivery": "hcmt"})));
        }
        out
    }

    /// Network registration lost or regained: +CREG/+CGREG/+CEREG URCs as enabled.
    pub fn set_network(&mut self, registered: bool) -> Vec<Action> {
        let mut out = Vec::new();
        self.registered = registered;
        let stat = if registered {
            1
        } else if self.sim_present {
            2
        } else {
            0
        };
        for (k, name) in ["+CREG", "+CGREG", "+CEREG"].iter().enumerate() {
            if self.reg_n[k] >= 1 {
                self.urc(&mut out, crlf(&format!("{name}: {stat}")));
            }
        }
        out
    }

    /// The SIM was pulled out (or put back).
    pub fn set_sim(&mut self, present: bool) -> Vec<Action> {
        let mut out = Vec::new();
        self.sim_present = present;
        self.urc(
            &mut out,
            crlf(if present {
                "+CPIN: READY"
            } else {
                "+CPIN: NOT READY"
            }),
        );
        out.extend(self.set_network(present));
        out
    }

    /// The port vanished and came back: the modem rebooted, client settings are gone.
    pub fn reset_session(&mut self) {
        for l in &mut self.lines {
            *l = Line::new();
        }
        self.cur = PRIMARY;
        self.late_next = None;
        self.cmee = 0;
        self.cmgf = 0;
        self.cnmi = [0; 5];
        self.reg_n = [0; 3];
    }

    /// The modem reset by itself (`sim ctl reboot`): every port's line state and the volatile
    /// settings go back to the power-on profile of the dialect (echo on, the saved +CMGF,
    /// +CNMI as the vendor ships it, +CMEE 0, +CSMS 0, +CPMS "SM", +CREG n=0); what sits on
    /// the SIM (stored messages, +CSCA) and the "SR" memory survive. The bank writes
    /// [`Engine::boot_burst`] once the modem has booted.
    pub fn power_on(&mut self) {
        self.reset_session();
        self.cmgf = self.profile.boot_cmgf;
        self.cnmi = self.profile.boot_cnmi;
        self.csms = 0;
        self.cmms = 0;
        self.hsmsss = [0, 0, 1, 0];
        self.cscs = "IRA".into();
        self.mems = [0, 0, 0];
        self.pending_ussd = false;
        self.cnma_pending = 0;
    }

    /// The unsolicited lines a freshly booted module writes on its primary port (the
    /// dialect's `boot_urcs`; `+CPIN: NOT READY` in place of READY without a SIM).
    pub fn boot_burst(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        for line in self.profile.boot_urcs {
            let line = if *line == "+CPIN: READY" && !self.sim_present {
                "+CPIN: NOT READY"
            } else {
                line
            };
            self.urc(&mut out, crlf(line));
        }
        out
    }
}
