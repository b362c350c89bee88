//! The modem actor: the only owner of one port. It serialises requests (send a part, ack an
//! inbound PDU, identity, health) with URC handling and the health poll, one AT command at a
//! time. What must always hold: a stored inbound PDU is deleted only in answer to its
//! [`AckHandle`](super::AckHandle); every link failure either recovers (probe, reopen, reset,
//! re-init, `Restarted`) or ends the actor with `Gone`/`Failed`; the actor never keeps itself
//! alive (it holds only a weak sender to its own queue).
//!
//! Why one file of ~950 lines: it is one state machine (the actor's loop, its requests, URC
//! handling, the health poll and the recovery ladder all read and change the same actor state
//! in one order), and cutting it would split that order across files. The supervision of actors
//! (restart with back-off, hot-plug) belongs in `bank/` and is not here (issue 10, later step).

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::dialect::{self, Dialect};
use super::session::{AtSession, LinkError};
use super::{
    strip_smsc, AckHandle, Health, Identity, InboundOrigin, InboundPdu, ModemConfig, ModemEvent,
    ModemHandle, Opener, Port,
};
use crate::at::{
    Cgmi, Cgmm, Cgmr, Cgsn, Cimi, Cmee, Cmgd, Cmgf, Cmgl, Cmgr, Cmgs, Cmms, Cnma, Cnmi, CnmiQuery,
    Cnum, CopsQuery, CpinEnter, CpinQuery, Cpms, Csms, Csq, DeviceError, Digester, EchoOff, Hcmgr,
    IccidCommand, PinStatus, Raw, ReadCommand, ReadIccid, RegKind, RegQuery, RegSet, SendCommand,
    TextSms, Urc,
};

type Reply<T> = oneshot::Sender<Result<Result<T, DeviceError>, LinkError>>;

pub(crate) enum Request {
    Identity(oneshot::Sender<Identity>),
    Health(oneshot::Sender<Health>),
    SendPart {
        pdu_hex: String,
        cmgs_length: u16,
        more_follow: bool,
        reply: Reply<u8>,
    },
    Ack {
        origin: InboundOrigin,
        reply: Reply<()>,
    },
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Request::Identity(_) => "Identity",
            Request::Health(_) => "Health",
            Request::SendPart { .. } => "SendPart",
            Request::Ack { .. } => "Ack",
            Request::Shutdown(_) => "Shutdown",
        };
        f.write_str(name)
    }
}

enum InitError {
    Link(LinkError),
    Device(String),
}

impl From<LinkError> for InitError {
    fn from(e: LinkError) -> Self {
        InitError::Link(e)
    }
}

/// The actor's life cycle; changed only in [`Actor::transition`], which logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initialising,
    Ready,
    Recovering,
    Stopped,
}

enum Kind {
    Message,
    Report,
}

struct Actor {
    cfg: ModemConfig,
    session: AtSession<Box<dyn Port>>,
    dialect: &'static Dialect,
    identity: Option<Identity>,
    health: Health,
    events: mpsc::Sender<ModemEvent>,
    me: mpsc::WeakSender<Request>,
    opener: Option<Opener>,
    cmms_open: bool,
    read_mem: Option<String>,
    /// `+CNMI?` as the module answered it after init, kept only for dialects that never echo:
    /// routing that changes from this means the module rebooted (see `Faults::never_echoes`).
    cnmi_baseline: Option<[u8; 5]>,
    phase: Phase,
}

pub(crate) fn spawn(
    io: Box<dyn Port>,
    cfg: ModemConfig,
    opener: Option<Opener>,
) -> (ModemHandle, mpsc::Receiver<ModemEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let (etx, erx) = mpsc::channel(256);
    let cfg_bound = cfg.send_request_bound();
    let actor = Actor {
        dialect: cfg.dialect.unwrap_or(&dialect::generic::GENERIC),
        cfg,
        session: AtSession::new(io, Digester::new()),
        identity: None,
        health: Health::default(),
        events: etx,
        me: tx.downgrade(),
        opener,
        cmms_open: false,
        read_mem: None,
        cnmi_baseline: None,
        phase: Phase::Initialising,
    };
    tokio::spawn(actor.run(rx));
    let bound = cfg_bound;
    (
        ModemHandle {
            tx,
            send_bound: bound,
        },
        erx,
    )
}

impl Actor {
    async fn emit(&mut self, ev: ModemEvent) {
        // A dropped receiver means nobody listens any more; the actor still serves requests.
        let _ = self.events.send(ev).await;
    }

    fn transition(&mut self, to: Phase) {
        if self.phase != to {
            tracing::info!(modem = %self.cfg.name, from = ?self.phase, ?to, "modem phase");
            self.phase = to;
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        self.lifecycle(&mut rx).await;
        self.transition(Phase::Stopped);
    }

    async fn lifecycle(&mut self, rx: &mut mpsc::Receiver<Request>) {
        let name = self.cfg.name.clone();
        match self.init().await {
            Ok(()) => self.transition(Phase::Ready),
            Err(InitError::Link(LinkError::Gone(e))) => {
                tracing::warn!(modem = %name, "port gone during init: {e}");
                return self.emit(ModemEvent::Gone(e)).await;
            }
            Err(InitError::Link(e)) => {
                // A modem still booting, or hung from before: the same recovery as later.
                tracing::warn!(modem = %name, "init failed: {e}; recovering");
                if !self.link_failed(e).await {
                    return;
                }
                self.transition(Phase::Ready);
            }
            Err(InitError::Device(e)) => {
                tracing::warn!(modem = %name, "init failed: {e}");
                return self.emit(ModemEvent::Failed(e)).await;
            }
        }
        let every = self.cfg.health_interval.max(Duration::from_millis(10));
        let mut tick = interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        enum Step {
            Req(Option<Request>),
            Urc(Result<Urc, LinkError>),
            Tick,
        }
        loop {
            let step = tokio::select! {
                biased;
                r = rx.recv() => Step::Req(r),
                u = self.session.next_urc() => Step::Urc(u),
                _ = tick.tick() => Step::Tick,
            };
            let alive = match step {
                Step::Req(None) => false,
                Step::Req(Some(Request::Shutdown(done))) => {
                    tracing::info!(modem = %name, "shutdown requested");
                    let _ = done.send(());
                    false
                }
                Step::Req(Some(r)) => self.request(r).await,
                Step::Urc(Ok(u)) => self.urc(u).await,
                Step::Urc(Err(e)) => self.link_failed(e).await,
                Step::Tick => match self.poll_health().await {
                    Ok(()) => true,
                    Err(e) => self.link_failed(e).await,
                },
            };
            if !alive || !self.after_command().await {
                break;
            }
        }
    }

    /// Probes until the modem answers; the dialect's probe, or ATE0 before detection.
    async fn probe(&mut self, line: &str) -> Result<bool, LinkError> {
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

    async fn init(&mut self) -> Result<(), InitError> {
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

    /// Status reports the modem stored while no one read the port ("SR" memory, +CNMI ds=2):
    /// emitted with an ack that deletes them, like stored messages. A modem without "SR"
    /// storage refuses the memory, which is fine.
    async fn read_stored_reports(&mut self) -> Result<(), LinkError> {
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

    /// The modem rebooted by itself (echo again, a power-up line): its settings are gone, so it
    /// is initialised again before it takes another command. Returns whether the actor carries on.
    async fn reinitialise(&mut self, why: &str) -> bool {
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
    async fn after_command(&mut self) -> bool {
        for tp_mr in self.session.take_late_references() {
            self.emit(ModemEvent::LateReference { tp_mr }).await;
        }
        if self.session.take_reset_seen() {
            return self.reinitialise("echo after ATE0").await;
        }
        true
    }

    async fn unlock_sim(&mut self) -> Result<(), InitError> {
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

    /// Messages already on the SIM: emitted with an ack that deletes them.
    async fn read_stored_list(&mut self) -> Result<(), LinkError> {
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
    async fn read_stored_texts(&mut self) -> Result<(), LinkError> {
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
    async fn emit_text(&mut self, t: TextSms, origin: InboundOrigin) {
        match super::hcmgs::text_to_deliver(&t) {
            Ok((pdu, len)) => self.emit_inbound(Kind::Message, pdu, len, origin).await,
            Err(e) => tracing::warn!(
                modem = %self.cfg.name,
                from = %crate::number::mask(&t.header.sender),
                "text message not taken: {e}"
            ),
        }
    }

    async fn emit_inbound(
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

    async fn select_mem(&mut self, mem: &str) -> Result<Result<(), DeviceError>, LinkError> {
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

    async fn read_stored(&mut self, kind: Kind, mem: String, index: u32) -> Result<(), LinkError> {
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

    async fn urc(&mut self, u: Urc) -> bool {
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

    async fn request(&mut self, r: Request) -> bool {
        match r {
            Request::Identity(reply) => {
                if let Some(id) = self.identity.clone() {
                    let _ = reply.send(id);
                }
                true
            }
            Request::Health(reply) => {
                let _ = reply.send(self.health.clone());
                true
            }
            Request::SendPart {
                pdu_hex,
                cmgs_length,
                more_follow,
                reply,
            } => {
                let r = self.send_part(pdu_hex, cmgs_length, more_follow).await;
                let failed = r.as_ref().err().cloned();
                let _ = reply.send(r);
                match failed {
                    Some(e) => self.link_failed(e).await,
                    None => true,
                }
            }
            Request::Ack { origin, reply } => {
                let r = self.ack(origin).await;
                let failed = r.as_ref().err().cloned();
                let _ = reply.send(r);
                match failed {
                    Some(e) => self.link_failed(e).await,
                    None => true,
                }
            }
            Request::Shutdown(done) => {
                let _ = done.send(());
                false
            }
        }
    }

    async fn send_part(
        &mut self,
        pdu_hex: String,
        length: u16,
        more_follow: bool,
    ) -> Result<Result<u8, DeviceError>, LinkError> {
        let d = self.dialect;
        let pdu_hex = if d.faults.drops_reply_with_smsc {
            strip_smsc(&pdu_hex).unwrap_or(pdu_hex)
        } else {
            pdu_hex
        };
        if more_follow && !self.cmms_open && !d.faults.no_cmms {
            match self.session.send(&Cmms { mode: 2 }).await? {
                Ok(()) => self.cmms_open = true,
                Err(e) => tracing::debug!(modem = %self.cfg.name, "AT+CMMS=2 refused: {e}"),
            }
        }
        let r = match d.send {
            SendCommand::Cmgs => {
                let cmgs = Cmgs { length, pdu_hex };
                match self
                    .session
                    .send_with_timeout(&cmgs, self.cfg.send_timeout)
                    .await
                {
                    // OK without a readable +CMGS reference: the modem says it sent the part,
                    // but there is no reference to match a status report. Unknown, never a
                    // retry (a duplicate costs the customer).
                    Ok(Err(DeviceError::BadReply(r))) => Err(LinkError::Unreadable(format!(
                        "OK without a reference: {r}"
                    ))
                    .after_payload(&format!("AT+CMGS={length}"))),
                    other => other,
                }
            }
            SendCommand::Hcmgs => {
                self.session
                    .send_hcmgs(&pdu_hex, self.cfg.send_timeout, d.faults.national_address)
                    .await
            }
        };
        if !more_follow {
            // Mode 2 closes the link by itself a few seconds after the last message.
            self.cmms_open = false;
        }
        match &r {
            Ok(Ok(mr)) => tracing::debug!(modem = %self.cfg.name, mr, "part sent"),
            Ok(Err(e)) => {
                tracing::info!(modem = %self.cfg.name, class = ?e.class(), "part refused: {e}")
            }
            Err(e) => tracing::warn!(modem = %self.cfg.name, "send failed on the link: {e}"),
        }
        r
    }

    async fn ack(&mut self, origin: InboundOrigin) -> Result<Result<(), DeviceError>, LinkError> {
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

    async fn poll_health(&mut self) -> Result<(), LinkError> {
        if let Some(was) = self.cnmi_baseline {
            if let Ok(now) = self.session.send(&CnmiQuery).await? {
                // Mode and <mt> decide where messages go; a reboot puts back the defaults.
                if now[..2] != was[..2] {
                    return Err(LinkError::Reset(format!(
                        "+CNMI is {now:?}, was {was:?} after init"
                    )));
                }
            }
        }
        let mut h = Health::default();
        if let Ok(q) = self.session.send(&Csq).await? {
            h.signal = Some(q);
            h.dbm = q.dbm();
        }
        h.registration = self
            .session
            .send(&RegQuery(RegKind::Cs))
            .await?
            .ok()
            .map(|r| r.stat);
        h.operator = self
            .session
            .send(&CopsQuery)
            .await?
            .ok()
            .and_then(|o| o.name);
        self.set_health(h).await;
        Ok(())
    }

    /// The one place health changes; logs and reports transitions.
    async fn set_health(&mut self, h: Health) {
        if h == self.health {
            return;
        }
        let was = self.health.registered();
        let had_state = self.health.registration.is_some();
        let now = h.registered();
        tracing::debug!(modem = %self.cfg.name, ?h, "health changed");
        self.health = h.clone();
        self.emit(ModemEvent::HealthChanged(h)).await;
        if had_state && was && !now {
            tracing::info!(modem = %self.cfg.name, "registration lost");
            self.emit(ModemEvent::RegistrationLost).await;
        } else if had_state && !was && now {
            tracing::info!(modem = %self.cfg.name, "registration regained");
            self.emit(ModemEvent::RegistrationRegained).await;
        }
    }

    /// Decides what a link failure means. Returns whether the actor carries on.
    async fn link_failed(&mut self, e: LinkError) -> bool {
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

    async fn recover(&mut self) -> bool {
        self.transition(Phase::Recovering);
        let alive = self.try_recover().await;
        if alive {
            self.transition(Phase::Ready);
        }
        alive
    }

    async fn try_recover(&mut self) -> bool {
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

/// Lines a module prints when it powers up (Quectel/SIMCom "RDY", "SMS Ready", "Call Ready";
/// "+CPIN: READY" and "+CFUN: 1" unsolicited; Huawei/Siemens "^SYSSTART"): seen while the
/// modem is in use, they mean it rebooted and lost its settings.
fn is_power_up(line: &str) -> bool {
    let up = line.trim().to_ascii_uppercase();
    matches!(
        up.as_str(),
        "RDY" | "SMS READY" | "CALL READY" | "+CPIN: READY" | "+CFUN: 1" | "^SYSSTART"
    )
}

/// Most slots read one by one at start-up on a text-mode (`^HCMGR`) module.
const MAX_TEXT_SLOTS: u32 = 255;

fn warn_on<T>(r: Result<T, DeviceError>, what: &str) {
    if let Err(e) = r {
        tracing::warn!("{what} refused: {e}");
    }
}
