//! The modem actor: the only owner of one port. It serialises requests (send a part, ack an
//! inbound PDU, identity, health) with URC handling and the health poll, one AT command at a
//! time. What must always hold: a stored inbound PDU is deleted only in answer to its
//! [`AckHandle`](super::AckHandle); every link failure either recovers (probe, reopen, reset,
//! re-init, `Restarted`) or ends the actor with `Gone`/`Failed`; the actor never keeps itself
//! alive (it holds only a weak sender to its own queue). The lifecycle loop, requests, sends
//! and the health poll live here; `init`, `inbound` and `recovery` hold the rest of `Actor`.

mod inbound;
mod init;
mod recovery;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::dialect::{self, Dialect};
use super::encode::{encode_part_for, Wire};
use super::session::{AtSession, LinkError};
use super::{
    AckHandle, Health, Identity, InboundOrigin, InboundPdu, ModemConfig, ModemEvent, ModemHandle,
    Opener, Port,
};
use crate::at::{
    Cgmi, Cgmm, Cgmr, Cgsn, Cimi, Cmee, Cmgd, Cmgf, Cmgl, Cmgr, Cmgs, Cmms, Cnma, Cnmi, CnmiQuery,
    Cnum, CopsQuery, CpinEnter, CpinQuery, Cpms, Csms, Csq, DeviceError, Digester, EchoOff, Hcmgr,
    IccidCommand, PinStatus, Raw, ReadCommand, ReadIccid, RegKind, RegQuery, RegSet, TextSms, Urc,
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
        // The stored part is encoded here, for this modem's dialect, each time it is sent.
        let wire = match encode_part_for(d, &pdu_hex, length) {
            Ok(w) => w,
            Err(e) => {
                tracing::info!(modem = %self.cfg.name, "part refused before sending: {e}");
                return Ok(Err(DeviceError::Unsupported(e)));
            }
        };
        if more_follow && !self.cmms_open && !d.faults.no_cmms {
            match self.session.send(&Cmms { mode: 2 }).await? {
                Ok(()) => self.cmms_open = true,
                Err(e) => tracing::debug!(modem = %self.cfg.name, "AT+CMMS=2 refused: {e}"),
            }
        }
        let r = match wire {
            Wire::Pdu { pdu_hex, length } => {
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
            Wire::Text(part) => self.session.send_hcmgs(part, self.cfg.send_timeout).await,
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
