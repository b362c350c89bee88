//! A modem actor's recovery: what a link failure means (port gone, reset, silence), the probe /
//! reopen / vendor reset ladder with back-off, and re-initialising a modem that rebooted by
//! itself. What must always hold: a failure after a payload is judged by the link underneath
//! (a port gone after the PDU is still a port gone); a recovering modem takes no command until
//! it answers again; late `+CMGS` references are handed to the daemon after every command.

use super::*;

impl Actor {
    /// The modem rebooted by itself (echo again, a power-up line): its settings are gone, so it
    /// is initialised again before it takes another command. Returns whether the actor carries on.
    pub(super) async fn reinitialise(&mut self, why: &str) -> bool {
        tracing::warn!(modem = %self.cfg.name, "modem reset by itself ({why}); initialising again");
        self.transition(Phase::Recovering);
        self.cmms_open = false;
        self.read_mem = None;
        match self.init().await {
            Ok(()) => {
                // The rest of the power-up burst, queued while init ran, is not news.
                self.session
                    .discard_urcs(|u| matches!(u, Urc::Other(l) if is_power_up(l)));
                self.transition(Phase::Ready);
                self.emit(ModemEvent::Restarted).await;
                true
            }
            Err(InitError::Link(e)) => match e.link().clone() {
                LinkError::Gone(reason) => {
                    self.emit(ModemEvent::Gone(reason)).await;
                    false
                }
                _ => self.recover().await,
            },
            Err(InitError::Device(e)) => {
                tracing::warn!(modem = %self.cfg.name, "init after reset failed: {e}");
                self.emit(ModemEvent::Failed(e)).await;
                false
            }
        }
    }

    /// After every command: late `+CMGS` references go to the daemon (they settle `unknown`
    /// parts), and a reboot the session noticed is handled before the next command.
    pub(super) async fn after_command(&mut self) -> bool {
        for tp_mr in self.session.take_late_references() {
            self.emit(ModemEvent::LateReference { tp_mr }).await;
        }
        if self.session.take_reset_seen() {
            return self.reinitialise("echo after ATE0").await;
        }
        true
    }

    /// Decides what a link failure means. Returns whether the actor carries on.
    pub(super) async fn link_failed(&mut self, e: LinkError) -> bool {
        // A failure after a payload is judged by what happened to the link underneath.
        match e.link().clone() {
            LinkError::Gone(reason) => {
                tracing::warn!(modem = %self.cfg.name, "port gone: {reason}");
                self.emit(ModemEvent::Gone(reason)).await;
                false
            }
            LinkError::Closed => false,
            LinkError::Reset(why) => self.reinitialise(&why).await,
            other => {
                tracing::warn!(modem = %self.cfg.name, "link trouble: {other}; probing");
                self.recover().await
            }
        }
    }

    pub(super) async fn recover(&mut self) -> bool {
        self.transition(Phase::Recovering);
        let alive = self.try_recover().await;
        if alive {
            self.transition(Phase::Ready);
        }
        alive
    }

    pub(super) async fn try_recover(&mut self) -> bool {
        let probe = self.dialect.probe();
        match self.probe(probe).await {
            // Alive again. A modem that never finished init gets one more go at it.
            Ok(true) if self.identity.is_some() => return true,
            Ok(true) => {
                if self.init().await.is_ok() {
                    return true;
                }
            }
            Ok(false) => {}
            Err(LinkError::Gone(r)) if self.opener.is_none() => {
                self.emit(ModemEvent::Gone(r)).await;
                return false;
            }
            Err(_) => {}
        }
        let Some(opener) = self.opener.clone() else {
            // Same stream: try the reset command once, then give up.
            let reset = Raw {
                line: self.dialect.reset.to_string(),
                timeout: self.cfg.probe_timeout,
            };
            let _ = self.session.send(&reset).await;
            if matches!(self.probe(probe).await, Ok(true)) && self.init().await.is_ok() {
                self.emit(ModemEvent::Restarted).await;
                return true;
            }
            self.emit(ModemEvent::Failed("modem stopped answering".into()))
                .await;
            return false;
        };
        let backoff = self.cfg.reopen_backoff.clone();
        let mut port_missing = false;
        for (attempt, delay) in backoff.iter().enumerate() {
            tracing::warn!(modem = %self.cfg.name, attempt, ?delay, "reopening the port");
            // Close the old port first: it is opened exclusively.
            let placeholder: Box<dyn Port> =
                Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
            self.session = AtSession::new(placeholder, Digester::new());
            tokio::time::sleep(*delay).await;
            let io = match opener() {
                Ok(io) => io,
                Err(e) => {
                    port_missing = e.kind() == std::io::ErrorKind::NotFound;
                    tracing::warn!(modem = %self.cfg.name, "reopen failed: {e}");
                    continue;
                }
            };
            port_missing = false;
            self.session = AtSession::new(io, Digester::new());
            // A fresh port may be all it needed; reset only a modem that still says nothing
            // (the reboot then gets the next back-off delay to come up).
            if !matches!(self.probe(probe).await, Ok(true)) {
                let reset = Raw {
                    line: self.dialect.reset.to_string(),
                    timeout: self.cfg.probe_timeout,
                };
                let _ = self.session.send(&reset).await;
                if !matches!(self.probe(probe).await, Ok(true)) {
                    continue;
                }
            }
            if self.init().await.is_ok() {
                self.emit(ModemEvent::Restarted).await;
                return true;
            }
        }
        if port_missing {
            self.emit(ModemEvent::Gone("port vanished while reopening".into()))
                .await;
        } else {
            self.emit(ModemEvent::Failed(
                "no answer after reopening the port".into(),
            ))
            .await;
        }
        false
    }
}
