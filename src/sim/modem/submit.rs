//! Submit checking of one virtual modem: what the modem does with the input after a `>` prompt:
//! a PDU (+CMGS/+CMGW: length, SMSC, the codec's reading of the SUBMIT, the `smsc_drop` quirk,
//! injected failures) or the text of a `^HCMGS` send, and the draw of an injected failure.
//!
//! What must always hold: a submit the network takes gets a message reference and, when asked,
//! a status report later; a malformed PDU is refused with its +CMS code, never accepted.

use super::*;

impl Engine {
    /// The text of a `^HCMGS` arrived: accepted with OK at once; the outcome URC follows
    /// after the network latency (the driver arms the timer).
    pub(in crate::sim::modem) fn text_entered(
        &mut self,
        out: &mut Vec<Action>,
        to: String,
        ucs2: bool,
        body: &[u8],
    ) {
        let text = if ucs2 {
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|u| u16::from_be_bytes([u[0], u[1]]))
                .collect();
            // 70 UCS2 characters (140 octets) is the single-message limit.
            if body.len() % 2 != 0 || body.len() > 140 {
                None
            } else {
                String::from_utf16(&units).ok()
            }
        } else if body.len() <= 160 && body.is_ascii() {
            Some(body.iter().map(|&b| char::from(b)).collect())
        } else {
            None
        };
        let Some(text) = text else {
            self.counters.rejected_pdus += 1;
            out.push(Action::Event(json!({"event": "fault", "kind": "bad_text", "ucs2": ucs2, "bytes": hex::encode_upper(body)})));
            self.write_fail(out, Fail::Cms(305));
            return;
        };
        let refused = if !self.sim_present {
            Some(310)
        } else if !self.registered {
            Some(331)
        } else {
            None
        };
        if let Some(cms) = refused {
            self.counters.failed += 1;
            out.push(Action::Event(
                json!({"event": "fault", "kind": "cms", "cms": cms, "to": to}),
            ));
            self.write_fail(out, Fail::Cms(cms));
            return;
        }
        let fail = self.draw_fail();
        let mr = self.mr;
        self.mr = self.mr.wrapping_add(1);
        out.push(Action::Arm(
            self.latency,
            Timer::TextDone {
                port: self.cur,
                to,
                text,
                mr,
                fail,
            },
        ));
        self.answer(out, crlf("OK"));
    }

    pub(in crate::sim::modem) fn pdu_entered(
        &mut self,
        out: &mut Vec<Action>,
        what: PromptFor,
        len: usize,
        text: &str,
    ) {
        let frame = match sms::check_submit(text, len) {
            Ok(f) => f,
            Err(e) => {
                self.counters.rejected_pdus += 1;
                out.push(Action::Event(json!({"event": "fault", "kind": "bad_pdu", "reason": e.to_string(), "pdu": text})));
                self.write_fail(out, Fail::Cms(304));
                return;
            }
        };
        match what {
            // Caught by `process` before a PDU is read; kept total without a panic.
            PromptFor::Text { .. } => self.write_fail(out, Fail::Error),
            PromptFor::Write => {
                if self.memory_full {
                    self.write_fail(out, Fail::Cms(322));
                    return;
                }
                match self.store(
                    1,
                    Stored {
                        stat: 2,
                        tpdu_len: len,
                        pdu: frame.bytes,
                    },
                ) {
                    Some(idx) => {
                        let mut w = crlf(&format!("+CMGW: {idx}"));
                        w.extend(crlf("OK"));
                        out.push(Action::Write(self.cur, w));
                    }
                    None => self.write_fail(out, Fail::Cms(322)),
                }
            }
            PromptFor::Send(_)
                if self.smsc_drop && frame.bytes.first().is_some_and(|&n| n != 0) =>
            {
                // The quirk: the reply after '>' never comes and nothing is sent (no counter
                // moves: the modem itself does not know it failed).
                out.push(Action::Event(json!({"event": "fault", "kind": "smsc_drop", "pdu": hex::encode_upper(&frame.bytes)})));
            }
            PromptFor::Send(send) => {
                let refused = if !self.sim_present {
                    Some(310)
                } else if !self.registered {
                    Some(331)
                } else {
                    None
                };
                if let Some(cms) = refused {
                    self.counters.failed += 1;
                    out.push(Action::Event(json!({"event": "fault", "kind": "cms", "cms": cms, "pdu": hex::encode_upper(&frame.bytes)})));
                    self.write_fail(out, Fail::Cms(cms));
                    return;
                }
                let fail = self.draw_fail();
                let mr = self.mr;
                self.mr = self.mr.wrapping_add(1);
                self.lines[self.cur].mode = Mode::Busy;
                out.push(Action::Arm(
                    self.latency,
                    Timer::SubmitDone {
                        port: self.cur,
                        frame,
                        mr,
                        fail,
                        send,
                    },
                ));
            }
        }
    }

    pub(in crate::sim::modem) fn draw_fail(&mut self) -> Option<u16> {
        let rule = self.fail?;
        match rule.mode {
            FailMode::Always => Some(rule.cms),
            FailMode::Once => {
                self.fail = None;
                Some(rule.cms)
            }
            FailMode::Times(n) => {
                self.fail = if n > 1 {
                    Some(FailRule {
                        cms: rule.cms,
                        mode: FailMode::Times(n - 1),
                    })
                } else {
                    None
                };
                Some(rule.cms)
            }
            FailMode::Rate(p) => {
                // NaN or out-of-range rates (from a library caller) count as "never" / "always".
                let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
                self.rng.random_bool(p).then_some(rule.cms)
            }
        }
    }
}
