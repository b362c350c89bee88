//! The init sequence of a modem actor: the liveness probe, echo off, error format, vendor
//! init lines, SIM PIN, PDU (or the dialect's text) mode, storage, `+CNMI` routing, identity,
//! then the messages and reports already stored. What must always hold: echo is expected only
//! until `ATE0` succeeded (after it, echo is a reboot sign, see `session`); a SIM that needs a
//! PIN gets the configured one or init fails with a clear reason; `Ready` is emitted once the
//! identity is known and before stored messages are read.

use super::*;

impl Actor {
    /// Probes until the modem answers; the dialect's probe, or ATE0 before detection.
    pub(super) async fn probe(&mut self, line: &str) -> Result<bool, LinkError> {
        let probe = Raw {
            line: line.to_string(),
            timeout: self.cfg.probe_timeout,
        };
        for _ in 0..self.cfg.probe_attempts.max(1) {
            match self.session.send(&probe).await {
                // Any final result, even ERROR, proves the modem is alive.
                Ok(_) => return Ok(true),
                Err(LinkError::Timeout { .. }) | Err(LinkError::Garbage { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    pub(super) async fn init(&mut self) -> Result<(), InitError> {
        let first = match self.cfg.dialect {
            Some(d) => d.probe(),
            None => "ATE0",
        };
        // Before ATE0 echo is normal; after it, echo means the modem rebooted.
        self.session.set_echo_expected(true);
        if !self.probe(first).await? {
            return Err(InitError::Link(LinkError::Timeout {
                command: first.to_string(),
                after: self.cfg.probe_timeout,
            }));
        }
        match self.session.send(&EchoOff).await? {
            Ok(()) => self.session.set_echo_expected(false),
            Err(e) => warn_on::<()>(Err(e), "ATE0"),
        }
        let cmee = Cmee {
            mode: if self.cfg.verbose_errors { 2 } else { 1 },
        };
        warn_on(self.session.send(&cmee).await?, "AT+CMEE");
        if self.session.take_reset_seen() {
            // It echoed the command right after accepting ATE0: a module that echoes whatever
            // it is told, not one that rebooted. Echo is normal for it from now on (its reboots
            // still show by their power-up lines).
            tracing::warn!(modem = %self.cfg.name, "modem ignores ATE0; echo is not taken as a reboot sign");
            self.session.set_echo_expected(true);
        }
        let manufacturer = self.session.send(&Cgmi).await?.unwrap_or_default();
        let model = self.session.send(&Cgmm).await?.unwrap_or_default();
        self.dialect = self
            .cfg
            .dialect
            .unwrap_or_else(|| dialect::detect(&manufacturer, &model));
        let d = self.dialect;
        tracing::info!(modem = %self.cfg.name, %manufacturer, %model, dialect = d.name, "modem identified");
        self.session
            .digester_mut()
            .add_urcs(d.ignore_urcs.iter().copied());
        for line in d.init {
            warn_on(self.session.send(&Raw::new(*line)).await?, line);
        }
        self.unlock_sim().await?;
        if d.faults.needs_cnma {
            // Phase 2+ service: routed messages wait for our +CNMA (and are re-sent by the
            // network when it never comes, which is what makes ack-after-store safe).
            warn_on(self.session.send(&Csms(1)).await?.map(|_| ()), "AT+CSMS=1");
        }
        match self
            .session
            .send(&Cmgf {
                mode: d.message_format,
            })
            .await?
        {
            Ok(()) => {}
            Err(e) if d.message_format == 0 => {
                return Err(InitError::Device(format!("PDU mode refused: {e}")))
            }
            Err(e) => warn_on::<()>(Err(e), "AT+CMGF=1"),
        }
        let mem = d.storage.to_string();
        warn_on(
            self.session
                .send(&Cpms(mem.clone(), mem.clone(), mem.clone()))
                .await?,
            "AT+CPMS",
        );
        self.read_mem = Some(mem);
        let [mode, mt, bm, ds, bfr] = d.cnmi;
        let cnmi = Cnmi {
            mode,
            mt,
            bm,
            ds,
            bfr,
        };
        if let Err(e) = self.session.send(&cnmi).await? {
            // Some firmware refuses status-report routing (<ds>) or <bfr>: keep the inbound
            // routing, which matters more, and say so.
            tracing::warn!(modem = %self.cfg.name, "AT+CNMI refused ({e}); retrying without status reports");
            let plain = Cnmi {
                mode,
                mt,
                bm: 0,
                ds: 0,
                bfr: 0,
            };
            warn_on(self.session.send(&plain).await?, "AT+CNMI (fallback)");
        }
        self.cnmi_baseline = None;
        if d.faults.never_echoes {
            // No echo will ever reveal a reboot of this module: what it lost will.
            self.cnmi_baseline = self.session.send(&CnmiQuery).await?.ok();
        }
        warn_on(
            self.session
                .send(&RegSet {
                    kind: RegKind::Cs,
                    mode: 1,
                })
                .await?,
            "AT+CREG=1",
        );

        let revision = self.session.send(&Cgmr).await?.ok();
        let imei = self.session.send(&Cgsn).await?.ok();
        let imsi = self.session.send(&Cimi).await?.ok();
        let mut iccid = self.session.send(&ReadIccid(d.iccid)).await?.ok();
        if iccid.is_none() && d.iccid != IccidCommand::Crsm {
            // Restricted SIM access works on any 27.007 modem: the fallback.
            iccid = self
                .session
                .send(&ReadIccid(IccidCommand::Crsm))
                .await?
                .ok();
        }
        let own_number = self.session.send(&Cnum).await?.ok().flatten();
        if let Some(n) = &own_number {
            tracing::info!(modem = %self.cfg.name, number = %crate::number::mask(n), "own number");
        }
        let identity = Identity {
            dialect: d.name,
            manufacturer,
            model,
            revision,
            imei,
            imsi,
            iccid,
            own_number,
            destination_toa: d.destination_toa(),
        };
        self.identity = Some(identity.clone());
        self.poll_health().await?;
        self.emit(ModemEvent::Ready(identity)).await;
        if self.cfg.read_stored_at_start {
            self.read_stored_list().await?;
            self.read_stored_reports().await?;
        }
        Ok(())
    }

    pub(super) async fn unlock_sim(&mut self) -> Result<(), InitError> {
        match self.session.send(&CpinQuery).await? {
            Ok(PinStatus::Ready) => Ok(()),
            Ok(PinStatus::SimPin) => {
                let Some(pin) = self.cfg.pin.clone() else {
                    return Err(InitError::Device(
                        "SIM PIN required and none configured".into(),
                    ));
                };
                match self.session.send(&CpinEnter { pin }).await? {
                    Ok(()) => Ok(()),
                    Err(e) => Err(InitError::Device(format!("SIM PIN rejected: {e}"))),
                }
            }
            Ok(PinStatus::SimPuk) => Err(InitError::Device("SIM PUK required".into())),
            Ok(PinStatus::Other(s)) => {
                tracing::warn!(modem = %self.cfg.name, state = %s, "unexpected +CPIN state");
                Ok(())
            }
            Err(e) => Err(InitError::Device(format!("SIM not usable: {e}"))),
        }
    }
}
