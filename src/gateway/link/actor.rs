//! The link actor's loop: connect and log in with back-off, the window of SUBMITs matched by
//! Sequence_Id, ACTIVE_TEST both ways, DELIVERs (reports, MO) handed over with their
//! ack-then-DELIVER_RESP, flow control, TERMINATE on shutdown. What must always hold: a SUBMIT
//! once written and left unanswered is reported MaybeSent, never written again by the link; a
//! DELIVER_RESP is written only after the consumer acknowledged, on the connection it came on.

use super::login::*;
use super::*;

/// How a connection ended.
enum End {
    Shutdown(Option<oneshot::Sender<()>>),
    Dropped(String),
}

impl Actor {
    fn next_seq(&mut self) -> u32 {
        // 0 is avoided: some gateways treat it as "no sequence".
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn stats(&self, f: impl FnOnce(&mut LinkStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn emit(&self, ev: GatewayEvent) {
        let _ = self.events.send(ev).await;
    }

    fn backoff(&self) -> Duration {
        let b = &self.cfg.reconnect_backoff;
        b.get(
            self.failures
                .saturating_sub(1)
                .min(b.len().saturating_sub(1)),
        )
        .copied()
        .unwrap_or(Duration::from_secs(5))
    }

    pub(super) async fn run(mut self) {
        let name = self.cfg.name.clone();
        let shutdown_reply;
        loop {
            let _ = self.state.send(LinkState::Connecting);
            let seq = self.next_seq();
            let attempt = {
                let cfg = self.cfg.clone();
                let connector = self.connector.clone();
                let version = self.version;
                async move { login(&cfg, &connector, version, seq).await }
            };
            let result = match self.wait_with(attempt, "connecting").await {
                Ok(r) => r,
                Err(reply) => {
                    shutdown_reply = reply;
                    break;
                }
            };
            let (reason, permanent, wait) = match result {
                Ok((io, version, buf)) => {
                    self.failures = 0;
                    self.epoch += 1;
                    self.stats(|s| s.logins += 1);
                    tracing::info!(gateway = %name, version = version_name(version), "CMPP link up");
                    let _ = self.state.send(LinkState::Up { version });
                    self.emit(GatewayEvent::Up { version }).await;
                    match self.serve(io, version, buf).await {
                        End::Shutdown(reply) => {
                            shutdown_reply = reply;
                            break;
                        }
                        End::Dropped(reason) => {
                            self.failures = 1;
                            (reason, false, self.backoff())
                        }
                    }
                }
                Err(LoginFail::VersionTooHigh)
                    if self.version == Version::V30 && self.cfg.protocol == Protocol::Cmpp3 =>
                {
                    tracing::info!(gateway = %name, "gateway refuses CMPP 3.0; falling back to 2.0");
                    self.version = Version::V20;
                    continue;
                }
                Err(LoginFail::VersionTooHigh) => (
                    "login refused (status 4): the gateway does not speak CMPP 2.0 either".into(),
                    true,
                    self.cfg.refused_backoff,
                ),
                Err(LoginFail::Refused(r)) => (r, true, self.cfg.refused_backoff),
                Err(LoginFail::Transient(r)) => {
                    self.failures += 1;
                    (r, false, self.backoff())
                }
            };
            tracing::warn!(gateway = %name, permanent, retry_in = ?wait, "CMPP link down: {reason}");
            self.stats(|s| s.last_error = Some(reason.clone()));
            let _ = self.state.send(LinkState::Down {
                reason: reason.clone(),
                permanent,
            });
            self.emit(GatewayEvent::Down {
                reason: reason.clone(),
                permanent,
                retry_in: wait,
            })
            .await;
            let pause = tokio::time::sleep(wait);
            if let Err(reply) = self.wait_with(pause, &reason).await {
                shutdown_reply = reply;
                break;
            }
        }
        let _ = self.state.send(LinkState::Stopped);
        self.submits.close();
        while let Ok(r) = self.submits.try_recv() {
            r.answer(Err(GatewayLinkError::Closed));
        }
        tracing::info!(gateway = %name, "CMPP link stopped");
        if let Some(r) = shutdown_reply {
            let _ = r.send(());
        }
    }

    /// Runs `fut` while the link is not up: submits are refused at once (NotSent, `why`),
    /// acknowledgements refused. Err(reply) = shutdown asked (or every handle gone).
    async fn wait_with<T>(
        &mut self,
        fut: impl Future<Output = T>,
        why: &str,
    ) -> Result<T, Option<oneshot::Sender<()>>> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return Ok(r),
                c = self.ctl.recv() => match c {
                    Some(Ctl::Shutdown { reply, .. }) => return Err(Some(reply)),
                    Some(Ctl::Ack { reply, .. }) => {
                        let _ = reply.send(Err(GatewayLinkError::AckLost("link down".into())));
                    }
                    None => return Err(None),
                },
                s = self.submits.recv() => match s {
                    Some(r) => r.answer(Err(GatewayLinkError::Down(why.to_string()))),
                    None => return Err(None),
                },
            }
        }
    }

    /// Serves one logged-in connection until it drops or shutdown completes.
    async fn serve(&mut self, mut io: BoxedStream, v: Version, mut buf: Vec<u8>) -> End {
        let mut conn = Conn {
            v,
            in_flight: HashMap::new(),
            pending: VecDeque::new(),
            timed_out: VecDeque::new(),
            paused_until: None,
            next_token: None,
            flow_streak: 0,
            last_rx: Instant::now(),
            active_test: None,
            shutting: None,
            terminate_sent: None,
            out: Vec::with_capacity(4096),
        };
        let end = self.serve_conn(&mut io, &mut conn, &mut buf).await;
        // Whatever is in flight may be at the gateway: MaybeSent. What is queued was not
        // written: NotSent.
        let cause = match &end {
            End::Shutdown(_) => "link shut down".to_string(),
            End::Dropped(r) => r.clone(),
        };
        let n = conn.in_flight.len() as u64;
        for (seq, f) in conn.in_flight.drain() {
            f.req.answer(Err(GatewayLinkError::Unconfirmed {
                sequence_id: seq,
                cause: cause.clone(),
            }));
        }
        for r in conn.pending.drain(..) {
            r.answer(Err(GatewayLinkError::Down(cause.clone())));
        }
        self.stats(|s| {
            s.unconfirmed += n;
            s.in_flight = 0;
        });
        let _ = io.shutdown().await;
        end
    }

    async fn serve_conn(&mut self, io: &mut BoxedStream, c: &mut Conn, buf: &mut Vec<u8>) -> End {
        let mut chunk = vec![0u8; 8192];
        loop {
            // Write what the window, the rate limit and flow control allow.
            if let Err(e) = self.fill(c) {
                return End::Dropped(e);
            }
            if !c.out.is_empty() {
                let out = std::mem::take(&mut c.out);
                if let Err(e) = write_bounded(io, &out, self.cfg.write_timeout).await {
                    return End::Dropped(e);
                }
                c.out = out;
                c.out.clear();
            }
            if let Some((deadline, reply)) = c.shutting.take() {
                if (c.in_flight.is_empty() || Instant::now() >= deadline)
                    && c.terminate_sent.is_none()
                {
                    let seq = self.next_seq();
                    let bytes = Pdu::new(seq, Body::Terminate).emit(c.v).unwrap_or_default();
                    if write_bounded(io, &bytes, self.cfg.write_timeout)
                        .await
                        .is_err()
                    {
                        return End::Shutdown(Some(reply));
                    }
                    // TERMINATE_RESP is waited for briefly: the in-flight answers are what
                    // mattered, and the socket closes either way.
                    let left = deadline.saturating_duration_since(Instant::now());
                    c.terminate_sent = Some(
                        Instant::now()
                            + left.clamp(Duration::from_millis(100), Duration::from_secs(2)),
                    );
                }
                c.shutting = Some((deadline, reply));
            }
            let can_take =
                c.pending.is_empty() && c.in_flight.len() < self.cfg.window && c.shutting.is_none();
            let wake = self.next_wake(c);
            tokio::select! {
                r = io.read(&mut chunk) => match r {
                    Ok(0) => return End::Dropped("gateway closed the link".into()),
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        c.last_rx = Instant::now();
                        c.active_test = None;
                        if let Some(end) = self.on_bytes(c, buf).await {
                            return end;
                        }
                    }
                    Err(e) => return End::Dropped(format!("read failed: {e}")),
                },
                s = self.submits.recv(), if can_take => match s {
                    Some(r) => c.pending.push_back(r),
                    None => {
                        // Every handle is gone: finish like a shutdown.
                        if c.shutting.is_none() {
                            let (tx, _) = oneshot::channel();
                            c.shutting = Some((Instant::now() + self.cfg.response_timeout, tx));
                        }
                    }
                },
                ctl = self.ctl.recv() => match ctl {
                    Some(Ctl::Ack { epoch, sequence_id, msg_id, reply }) => {
                        if epoch != self.epoch {
                            let _ = reply.send(Err(GatewayLinkError::AckLost("the DELIVER came on an earlier connection".into())));
                            continue;
                        }
                        let pdu = Pdu::new(sequence_id, Body::DeliverResp(MsgIdResult { msg_id, result: 0 }));
                        let bytes = pdu.emit(c.v).unwrap_or_default();
                        match write_bounded(io, &bytes, self.cfg.write_timeout).await {
                            Ok(()) => { let _ = reply.send(Ok(())); }
                            Err(e) => {
                                let _ = reply.send(Err(GatewayLinkError::AckLost(e.clone())));
                                return End::Dropped(e);
                            }
                        }
                    }
                    Some(Ctl::Shutdown { bound, reply }) => {
                        for r in c.pending.drain(..) {
                            r.answer(Err(GatewayLinkError::Down("shutting down".into())));
                        }
                        c.shutting = Some((Instant::now() + bound, reply));
                    }
                    None => {
                        if c.shutting.is_none() {
                            let (tx, _) = oneshot::channel();
                            c.shutting = Some((Instant::now() + self.cfg.response_timeout, tx));
                        }
                    }
                },
                _ = tokio::time::sleep_until(wake) => {
                    if let Some(end) = self.on_timers(c) {
                        return end;
                    }
                }
            }
        }
    }

    /// Moves pending submits into the write buffer while the window, the bucket and flow
    /// control allow.
    fn fill(&mut self, c: &mut Conn) -> Result<(), String> {
        if c.shutting.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if c.paused_until.is_some_and(|t| now < t) {
            return Ok(());
        }
        c.paused_until = None;
        c.next_token = None;
        let mut written = 0u64;
        while c.in_flight.len() < self.cfg.window {
            if c.pending.is_empty() {
                match self.submits.try_recv() {
                    Ok(r) => c.pending.push_back(r),
                    Err(_) => break,
                }
            }
            // Abandoned by its caller while queued: drop it unanswered (nobody listens).
            if c.pending
                .front()
                .is_some_and(|r| r.claim.state.load(Ordering::Acquire) == ABANDONED)
            {
                c.pending.pop_front();
                continue;
            }
            if let Err(at) = self.limiter.try_take(now) {
                c.next_token = Some(at);
                break;
            }
            c.next_token = None;
            let Some(req) = c.pending.pop_front() else {
                break;
            };
            let seq = self.next_seq();
            req.claim.sequence_id.store(seq, Ordering::Release);
            if req
                .claim
                .state
                .compare_exchange(QUEUED, WRITTEN, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let bytes = match Pdu::new(seq, Body::Submit(req.submit.clone())).emit(c.v) {
                Ok(b) => b,
                Err(e) => {
                    // Checked by build_submit in 2.0 layout; a 3.0-only failure lands here,
                    // before any byte left.
                    req.answer(Err(GatewayLinkError::Unsendable(
                        crate::gateway::PartError::Codec(e.to_string()),
                    )));
                    continue;
                }
            };
            c.out.extend_from_slice(&bytes);
            c.in_flight.insert(
                seq,
                InFlight {
                    req,
                    deadline: now + self.cfg.response_timeout,
                },
            );
            written += 1;
        }
        if written > 0 {
            let n = c.in_flight.len();
            self.stats(|s| {
                s.written += written;
                s.in_flight = n;
            });
        }
        Ok(())
    }

    fn next_wake(&self, c: &Conn) -> Instant {
        let now = Instant::now();
        let mut t = match c.active_test {
            Some((deadline, _)) => deadline,
            None => c.last_rx + self.cfg.heartbeat,
        };
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        consider(c.in_flight.values().map(|f| f.deadline).min());
        // Only what can change the picture: a pause or a token matters when something waits
        // and the window has room; the shutdown deadline until TERMINATE is out. (A past
        // instant here that nothing acts on would spin the loop.)
        if !c.pending.is_empty() && c.in_flight.len() < self.cfg.window && c.shutting.is_none() {
            consider(c.paused_until);
            consider(c.next_token);
        }
        if c.terminate_sent.is_none() {
            consider(c.shutting.as_ref().map(|s| s.0));
        }
        consider(c.terminate_sent);
        t.max(now)
    }

    fn on_timers(&mut self, c: &mut Conn) -> Option<End> {
        let now = Instant::now();
        if let Some(t) = c.terminate_sent {
            if now >= t {
                return Some(End::Shutdown(c.shutting.take().map(|s| s.1)));
            }
        }
        let expired: Vec<u32> = c
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(s, _)| *s)
            .collect();
        let timeout = self.cfg.response_timeout;
        for seq in &expired {
            if let Some(f) = c.in_flight.remove(seq) {
                f.req.answer(Err(GatewayLinkError::Unconfirmed {
                    sequence_id: *seq,
                    cause: format!("no SUBMIT_RESP within {timeout:?}"),
                }));
                c.timed_out.push_back(*seq);
                if c.timed_out.len() > 1024 {
                    c.timed_out.pop_front();
                }
            }
        }
        if !expired.is_empty() {
            let n = c.in_flight.len();
            self.stats(|s| {
                s.unconfirmed += expired.len() as u64;
                s.in_flight = n;
                s.last_error = Some(format!("no SUBMIT_RESP within {timeout:?}"));
            });
        }
        // Heartbeat: ACTIVE_TEST after `heartbeat` without a PDU from the gateway.
        match c.active_test {
            None if now >= c.last_rx + self.cfg.heartbeat => {
                let seq = self.next_seq();
                c.out.extend(
                    Pdu::new(seq, Body::ActiveTest)
                        .emit(c.v)
                        .unwrap_or_default(),
                );
                c.active_test = Some((now + self.cfg.active_test_timeout, 1));
            }
            Some((deadline, tries)) if now >= deadline => {
                if tries >= self.cfg.active_test_attempts.max(1) {
                    return Some(End::Dropped(format!(
                        "no answer to ACTIVE_TEST ({tries} tries): the link is dead"
                    )));
                }
                let seq = self.next_seq();
                c.out.extend(
                    Pdu::new(seq, Body::ActiveTest)
                        .emit(c.v)
                        .unwrap_or_default(),
                );
                c.active_test = Some((now + self.cfg.active_test_timeout, tries + 1));
            }
            _ => {}
        }
        None
    }

    /// Handles every whole PDU in `buf`.
    async fn on_bytes(&mut self, c: &mut Conn, buf: &mut Vec<u8>) -> Option<End> {
        let mut used = 0;
        let end = loop {
            match cmpp::decode(&buf[used..], c.v) {
                Ok((None, _)) => break None,
                Ok((Some(pdu), n)) => {
                    used += n;
                    if let Some(end) = self.on_pdu(c, pdu).await {
                        break Some(end);
                    }
                }
                Err(CmppError::Body {
                    command_id,
                    sequence_id,
                    consumed,
                    source,
                }) => {
                    used += consumed;
                    tracing::warn!(gateway = %self.cfg.name, "unreadable PDU {command_id:#x}: {source}");
                    // A DELIVER we cannot read is answered "wrong structure", so the gateway
                    // knows it was not taken.
                    if command_id == 5 {
                        let resp = Body::DeliverResp(MsgIdResult {
                            msg_id: 0,
                            result: 1,
                        });
                        c.out
                            .extend(Pdu::new(sequence_id, resp).emit(c.v).unwrap_or_default());
                    }
                }
                Err(e) => break Some(End::Dropped(format!("unframeable stream: {e}"))),
            }
        };
        buf.drain(..used.min(buf.len()));
        end
    }

    async fn on_pdu(&mut self, c: &mut Conn, pdu: Pdu) -> Option<End> {
        let seq = pdu.sequence_id;
        match pdu.body {
            Body::SubmitResp(r) => self.on_submit_resp(c, seq, r).await,
            Body::Deliver(d) => {
                // No handle left: nobody can store it, so it stays unacknowledged and the
                // gateway delivers it again later.
                let tx = self.ctl_weak.upgrade()?;
                let ack = DeliverAck {
                    tx,
                    epoch: self.epoch,
                    sequence_id: seq,
                    msg_id: d.msg_id,
                };
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let ev = match d.content {
                    DeliverContent::Report(rep) => GatewayEvent::Report(ReportEvent {
                        msg_id: rep.msg_id,
                        delivered: rep.delivered(),
                        stat: text(&rep.stat),
                        dest_terminal_id: text(&rep.dest_terminal_id),
                        submit_time: text(&rep.submit_time),
                        done_time: text(&rep.done_time),
                        ack,
                    }),
                    DeliverContent::Message(_) if d.registered_delivery == 1 => {
                        tracing::warn!(gateway = %self.cfg.name, "status report of an unknown size; answered result 1");
                        let resp = Body::DeliverResp(MsgIdResult {
                            msg_id: d.msg_id,
                            result: 1,
                        });
                        c.out
                            .extend(Pdu::new(seq, resp).emit(c.v).unwrap_or_default());
                        return None;
                    }
                    DeliverContent::Message(m) => {
                        let (udh, rest) = split_udh(d.tp_udhi == 1, &m);
                        let dest_id = text(&d.dest_id);
                        GatewayEvent::Mo(MoMessage {
                            msg_id: d.msg_id,
                            src_terminal_id: text(&d.src_terminal_id),
                            extension: dest_id.strip_prefix(&self.cfg.src_id).map(str::to_string),
                            dest_id,
                            msg_fmt: d.msg_fmt,
                            text: decode_mo(d.msg_fmt, rest),
                            content: rest.to_vec(),
                            udh,
                            ack,
                        })
                    }
                };
                self.emit(ev).await;
                None
            }
            Body::ActiveTest => {
                c.out.extend(
                    Pdu::new(seq, Body::ActiveTestResp(Some(0)))
                        .emit(c.v)
                        .unwrap_or_default(),
                );
                None
            }
            Body::ActiveTestResp(_) => None,
            Body::Terminate => {
                c.out.extend(
                    Pdu::new(seq, Body::TerminateResp)
                        .emit(c.v)
                        .unwrap_or_default(),
                );
                Some(End::Dropped("gateway sent TERMINATE".into()))
            }
            Body::TerminateResp if c.terminate_sent.is_some() => {
                Some(End::Shutdown(c.shutting.take().map(|s| s.1)))
            }
            _ => None,
        }
    }

    async fn on_submit_resp(&mut self, c: &mut Conn, seq: u32, r: MsgIdResult) -> Option<End> {
        let Some(f) = c.in_flight.remove(&seq) else {
            if c.timed_out.contains(&seq) {
                self.emit(GatewayEvent::LateResponse {
                    sequence_id: seq,
                    msg_id: r.msg_id,
                    result: r.result,
                })
                .await;
            }
            return None;
        };
        let n = c.in_flight.len();
        self.stats(|s| {
            *s.results.entry(r.result).or_default() += 1;
            s.in_flight = n;
        });
        let mut req = f.req;
        match classify_submit_result(r.result) {
            SubmitClass::Accepted => {
                c.flow_streak = 0;
                req.answer(Ok(SubmitOutcome::Accepted { msg_id: r.msg_id }));
            }
            SubmitClass::FlowControl => {
                c.flow_streak = c.flow_streak.saturating_add(1);
                let factor = 1u32 << (c.flow_streak - 1).min(4);
                c.paused_until = Some(Instant::now() + self.cfg.flow_control_pause * factor);
                if req.reply.is_closed() {
                    // Its caller gave up while it was written (and was told MaybeSent): the
                    // refusal settles nothing for anyone, and it must not go again.
                } else if req.flow_attempts < self.cfg.flow_control_retries && c.shutting.is_none()
                {
                    // Refused, so not sent: it may go again, and its caller may give up on
                    // it while it waits.
                    req.flow_attempts += 1;
                    req.claim.state.store(QUEUED, Ordering::Release);
                    c.pending.push_front(req);
                } else {
                    let attempts = req.flow_attempts + 1;
                    req.answer(Ok(SubmitOutcome::FlowControl { attempts }));
                }
            }
            class => req.answer(Ok(SubmitOutcome::Refused {
                result: r.result,
                class,
            })),
        }
        None
    }
}

struct InFlight {
    req: SubmitReq,
    deadline: Instant,
}

/// One connection's state.
struct Conn {
    v: Version,
    in_flight: HashMap<u32, InFlight>,
    /// Taken from the queue (or put back after flow control), not written yet.
    pending: VecDeque<SubmitReq>,
    /// Sequence ids answered MaybeSent by timeout (for LateResponse).
    timed_out: VecDeque<u32>,
    paused_until: Option<Instant>,
    next_token: Option<Instant>,
    flow_streak: u32,
    last_rx: Instant,
    /// An ACTIVE_TEST unanswered: (deadline, tries so far).
    active_test: Option<(Instant, u32)>,
    /// Shutting down: (deadline for in-flight answers, who to tell).
    shutting: Option<(Instant, oneshot::Sender<()>)>,
    /// TERMINATE written; wait for TERMINATE_RESP until then.
    terminate_sent: Option<Instant>,
    out: Vec<u8>,
}
