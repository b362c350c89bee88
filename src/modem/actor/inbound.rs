//! What a modem receives: URCs, messages and status reports stored on the SIM (read at start-up
//! and on `+CMTI`/`+CDSI`), texts of text-mode (PHS) modules, and the acknowledgement that
//! deletes a stored copy. What must always hold: a stored PDU is deleted (`+CMGD`) only after
//! its consumer acknowledged it; the read memory is switched only when needed and remembered.

use super::*;

impl Actor {
    /// Status reports the modem stored while no one read the port ("SR" memory, +CNMI ds=2):
    /// emitted with an ack that deletes them, like stored messages. A modem without "SR"
    /// storage refuses the memory, which is fine.
    pub(super) async fn read_stored_reports(&mut self) -> Result<(), LinkError> {
        if self.dialect.read == ReadCommand::Hcmgr {
            // Text mode has no PDU listing; CDMA modules report delivery as ^HCDS, not in "SR".
            return Ok(());
        }
        let back = self.read_mem.clone();
        if let Err(e) = self.select_mem("SR").await? {
            tracing::debug!(modem = %self.cfg.name, "no status-report memory: {e}");
            return Ok(());
        }
        match self.session.send(&Cmgl(4)).await? {
            Ok(list) => {
                for p in list {
                    let origin = InboundOrigin::Stored {
                        mem: "SR".into(),
                        index: p.index,
                    };
                    self.emit_inbound(Kind::Report, p.pdu, p.length, origin)
                        .await;
                }
            }
            Err(e) => tracing::debug!(modem = %self.cfg.name, "AT+CMGL=4 on SR failed: {e}"),
        }
        if let Some(mem) = back {
            if let Err(e) = self.select_mem(&mem).await? {
                tracing::warn!(modem = %self.cfg.name, %mem, "cannot select memory again: {e}");
            }
        }
        Ok(())
    }

    /// Messages already on the SIM: emitted with an ack that deletes them.
    pub(super) async fn read_stored_list(&mut self) -> Result<(), LinkError> {
        if self.dialect.read == ReadCommand::Hcmgr {
            return self.read_stored_texts().await;
        }
        match self.session.send(&Cmgl(4)).await? {
            Ok(list) => {
                let mem = self
                    .read_mem
                    .clone()
                    .unwrap_or_else(|| self.dialect.storage.to_string());
                for p in list.into_iter().filter(|p| p.stat <= 1) {
                    let origin = InboundOrigin::Stored {
                        mem: mem.clone(),
                        index: p.index,
                    };
                    self.emit_inbound(Kind::Message, p.pdu, p.length, origin)
                        .await;
                }
            }
            Err(e) => tracing::warn!(modem = %self.cfg.name, "AT+CMGL=4 failed: {e}"),
        }
        Ok(())
    }

    /// CDMA/PHS text mode has no PDU listing: `+CPMS` tells how many messages the memory
    /// holds and how many slots it has, and each slot is read with `^HCMGR` until all are
    /// found (an empty slot answers OK alone, or an error on some firmware).
    pub(super) async fn read_stored_texts(&mut self) -> Result<(), LinkError> {
        let mem = self
            .read_mem
            .clone()
            .unwrap_or_else(|| self.dialect.storage.to_string());
        let usage = match self
            .session
            .send(&Cpms(mem.clone(), mem.clone(), mem.clone()))
            .await?
        {
            Ok(u) => u.first().copied(),
            Err(e) => {
                tracing::warn!(modem = %self.cfg.name, "AT+CPMS failed: {e}");
                None
            }
        };
        let Some((used, total)) = usage else {
            return Ok(());
        };
        // A module claiming thousands of slots is not read slot by slot for ever.
        let total = total.min(MAX_TEXT_SLOTS);
        let mut found = 0;
        for index in 1..=total {
            if found >= used {
                break;
            }
            match self.session.send(&Hcmgr(index)).await? {
                Ok(Some(t)) => {
                    found += 1;
                    let origin = InboundOrigin::Stored {
                        mem: mem.clone(),
                        index,
                    };
                    self.emit_text(t, origin).await;
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(modem = %self.cfg.name, index, "AT^HCMGR: {e}"),
            }
        }
        Ok(())
    }

    /// A text-mode message (`^HCMT`, `^HCMGR`) goes on as the SMS-DELIVER it stands for, so
    /// the daemon has one inbound path. One that cannot be carried is left where it is (on
    /// the modem, unacknowledged) and logged.
    pub(super) async fn emit_text(&mut self, t: TextSms, origin: InboundOrigin) {
        match crate::modem::hcmgs::text_to_deliver(&t) {
            Ok((pdu, len)) => self.emit_inbound(Kind::Message, pdu, len, origin).await,
            Err(e) => tracing::warn!(
                modem = %self.cfg.name,
                from = %crate::number::mask(&t.header.sender),
                "text message not taken: {e}"
            ),
        }
    }

    pub(super) async fn emit_inbound(
        &mut self,
        kind: Kind,
        pdu_hex: String,
        length: u16,
        origin: InboundOrigin,
    ) {
        let Some(tx) = self.me.upgrade() else { return };
        let pdu = InboundPdu {
            pdu_hex,
            length,
            ack: AckHandle { tx, origin },
        };
        self.emit(match kind {
            Kind::Message => ModemEvent::Inbound(pdu),
            Kind::Report => ModemEvent::StatusReport(pdu),
        })
        .await;
    }

    pub(super) async fn select_mem(
        &mut self,
        mem: &str,
    ) -> Result<Result<(), DeviceError>, LinkError> {
        if self.read_mem.as_deref() == Some(mem) {
            return Ok(Ok(()));
        }
        let r = self
            .session
            .send(&Raw::new(format!("AT+CPMS=\"{mem}\"")))
            .await?;
        if r.is_ok() {
            self.read_mem = Some(mem.to_string());
        }
        Ok(r.map(|_| ()))
    }

    pub(super) async fn read_stored(
        &mut self,
        kind: Kind,
        mem: String,
        index: u32,
    ) -> Result<(), LinkError> {
        if let Err(e) = self.select_mem(&mem).await? {
            tracing::warn!(modem = %self.cfg.name, %mem, "cannot select memory: {e}");
            return Ok(());
        }
        if matches!(kind, Kind::Message) && self.dialect.read == ReadCommand::Hcmgr {
            match self.session.send(&Hcmgr(index)).await? {
                Ok(Some(t)) => {
                    self.emit_text(t, InboundOrigin::Stored { mem, index })
                        .await
                }
                Ok(None) => tracing::debug!(modem = %self.cfg.name, index, "slot already empty"),
                Err(e) => tracing::warn!(modem = %self.cfg.name, index, "AT^HCMGR failed: {e}"),
            }
            return Ok(());
        }
        match self.session.send(&Cmgr(index)).await? {
            Ok(Some(p)) => {
                self.emit_inbound(kind, p.pdu, p.length, InboundOrigin::Stored { mem, index })
                    .await
            }
            Ok(None) => tracing::debug!(modem = %self.cfg.name, index, "slot already empty"),
            Err(e) => tracing::warn!(modem = %self.cfg.name, index, "AT+CMGR failed: {e}"),
        }
        Ok(())
    }

    pub(super) async fn urc(&mut self, u: Urc) -> bool {
        let r = match u {
            Urc::NewMessage { mem, index } => self.read_stored(Kind::Message, mem, index).await,
            Urc::StatusReportStored { mem, index } => {
                self.read_stored(Kind::Report, mem, index).await
            }
            Urc::Message { length, pdu, .. } => {
                let origin = InboundOrigin::Direct {
                    cnma: self.dialect.faults.needs_cnma,
                };
                self.emit_inbound(Kind::Message, pdu, length, origin).await;
                Ok(())
            }
            Urc::StatusReport { length, pdu } => {
                let origin = InboundOrigin::Direct {
                    cnma: self.dialect.faults.needs_cnma,
                };
                self.emit_inbound(Kind::Report, pdu, length, origin).await;
                Ok(())
            }
            Urc::Registration(r) => {
                if r.kind == RegKind::Cs {
                    let mut h = self.health.clone();
                    h.registration = Some(r.stat);
                    self.set_health(h).await;
                }
                Ok(())
            }
            Urc::Ring => Ok(()),
            Urc::Text(t) => {
                // ^HCMT: routed directly; CDMA text mode has no +CNMA.
                self.emit_text(t, InboundOrigin::Direct { cnma: false })
                    .await;
                Ok(())
            }
            Urc::Other(line) if is_power_up(&line) && self.phase == Phase::Ready => {
                return self.reinitialise(&line).await;
            }
            Urc::Other(line) => {
                let up = line.to_ascii_uppercase();
                if self.dialect.ignore_urcs.iter().any(|p| up.starts_with(p)) {
                    tracing::trace!(modem = %self.cfg.name, %line, "vendor URC ignored");
                } else {
                    tracing::debug!(modem = %self.cfg.name, %line, "URC");
                }
                Ok(())
            }
        };
        match r {
            Ok(()) => true,
            Err(e) => self.link_failed(e).await,
        }
    }

    pub(super) async fn ack(
        &mut self,
        origin: InboundOrigin,
    ) -> Result<Result<(), DeviceError>, LinkError> {
        match origin {
            InboundOrigin::Stored { mem, index } => {
                if let Err(e) = self.select_mem(&mem).await? {
                    return Ok(Err(e));
                }
                self.session.send(&Cmgd { index, flag: None }).await
            }
            InboundOrigin::Direct { cnma: true } => self.session.send(&Cnma).await,
            InboundOrigin::Direct { cnma: false } => Ok(Ok(())),
        }
    }
}
