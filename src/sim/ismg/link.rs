//! One CMPP link of the virtual gateway: the accept loop gives each TCP connection a task
//! that owns its socket, reads and frames PDUs, dispatches them (login and SUBMIT to
//! `handlers.rs`), keeps the timers of the PDUs it owes (SUBMIT_RESPs and status reports)
//! and writes them when due. What must hold: only this task writes its socket; a write that
//! does not finish within [`WRITE_TIMEOUT`] closes the link; a report written is kept in
//! `unacked` until its DELIVER_RESP; on close the link leaves the links map before its
//! reports are handed on (`reports.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Ctx, LinkCmd, LinkEntry};
use crate::cmpp::{self, Body, CmppError, MsgIdResult, Pdu, Version};

pub(super) async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    mut shut: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let Ok((stream, peer)) = conn else { continue };
                let _ = stream.set_nodelay(true);
                let (tx, rx) = mpsc::channel(64);
                let id = ctx.with(|s| {
                    s.next_link += 1;
                    s.links.insert(s.next_link, LinkEntry { tx, version: None });
                    s.next_link
                });
                ctx.events.log(None, json!({"event": "cmpp_link_open", "link": id, "peer": peer.to_string()}));
                let link = Link { id, ctx: ctx.clone(), version: None, timers: Vec::new(), unacked: BTreeMap::new(), pending: 0, seq: 0 };
                tokio::spawn(link.run(stream, rx, shut.clone()));
            }
            _ = shut.changed() => return,
        }
    }
}

/// A PDU due on the link at a time; `resp` marks a SUBMIT_RESP (it frees a window slot).
/// Any other timer is a status report (a kept one when the link closes).
#[derive(Debug)]
pub(super) struct Timer {
    pub(super) at: Instant,
    pub(super) body: Body,
    pub(super) sequence_id: Option<u32>,
    pub(super) resp: bool,
}

pub(super) struct Link {
    pub(super) id: u64,
    pub(super) ctx: Arc<Ctx>,
    /// Set once logged in.
    pub(super) version: Option<Version>,
    pub(super) timers: Vec<Timer>,
    /// Reports written and not acknowledged yet, by their DELIVER's sequence id.
    pub(super) unacked: BTreeMap<u32, Timer>,
    /// SUBMITs accepted and not answered yet.
    pub(super) pending: usize,
    /// Sequence ids of the PDUs the gateway starts (DELIVER, ACTIVE_TEST).
    pub(super) seq: u32,
}

const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) enum Flow {
    Go,
    Close(&'static str),
}

impl Link {
    pub(super) async fn run(
        mut self,
        mut stream: TcpStream,
        mut rx: mpsc::Receiver<LinkCmd>,
        mut shut: watch::Receiver<bool>,
    ) {
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let reason = loop {
            let next = self.timers.iter().map(|t| t.at).min();
            tokio::select! {
                r = stream.read(&mut chunk) => {
                    match r {
                        Ok(0) => break "peer closed",
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[..n]);
                            match self.on_bytes(&mut buf, &mut stream).await {
                                Flow::Go => {}
                                Flow::Close(why) => break why,
                            }
                        }
                        Err(_) => break "read error",
                    }
                }
                cmd = rx.recv() => match cmd {
                    Some(LinkCmd::Send(body)) => {
                        if self.ctx.with(|s| s.faults.silent) { continue; }
                        let seq = self.next_seq();
                        if self.write(&mut stream, Pdu::new(seq, *body)).await.is_err() { break "write failed"; }
                    }
                    Some(LinkCmd::Adopt(timers)) => self.adopt(timers),
                    Some(LinkCmd::Close) | None => break "dropped by sim ctl",
                },
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    if let Flow::Close(why) = self.fire(&mut stream).await { break why; }
                }
                _ = shut.changed() => break "shutdown",
            }
        };
        let _ = stream.shutdown().await;
        self.hand_off_reports(&mut rx);
        self.ctx.events.log(
            None,
            json!({"event": "cmpp_link_close", "link": self.id, "reason": reason}),
        );
    }

    pub(super) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub(super) fn v(&self) -> Version {
        self.version.unwrap_or(Version::V30)
    }

    pub(super) async fn write(&mut self, stream: &mut TcpStream, pdu: Pdu) -> Result<(), ()> {
        self.write_in(stream, pdu, self.v()).await
    }

    pub(super) async fn write_in(
        &mut self,
        stream: &mut TcpStream,
        pdu: Pdu,
        v: Version,
    ) -> Result<(), ()> {
        let Ok(bytes) = pdu.emit(v) else {
            tracing::warn!(
                "sim cmpp link {}: cannot emit {:?}",
                self.id,
                pdu.body.command_id()
            );
            return Err(());
        };
        match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn on_bytes(&mut self, buf: &mut Vec<u8>, stream: &mut TcpStream) -> Flow {
        loop {
            match cmpp::decode(buf, self.v()) {
                Ok((None, _)) => return Flow::Go,
                Ok((Some(pdu), n)) => {
                    buf.drain(..n);
                    if self.ctx.with(|s| {
                        if s.faults.silent {
                            s.status.swallowed += 1;
                        }
                        s.faults.silent
                    }) {
                        continue;
                    }
                    if let Flow::Close(why) = self.on_pdu(pdu, stream).await {
                        return Flow::Close(why);
                    }
                }
                Err(CmppError::Body {
                    command_id,
                    sequence_id,
                    consumed,
                    source,
                }) => {
                    buf.drain(..consumed);
                    self.ctx.events.log(None, json!({"event": "cmpp_bad_pdu", "link": self.id, "command_id": command_id, "error": source.to_string()}));
                    // A SUBMIT we cannot read is answered "wrong structure" (1), as an
                    // ISMG does; anything else unreadable is ignored.
                    if command_id == 4 && self.version.is_some() {
                        let resp = Body::SubmitResp(MsgIdResult {
                            msg_id: 0,
                            result: 1,
                        });
                        if self
                            .write(stream, Pdu::new(sequence_id, resp))
                            .await
                            .is_err()
                        {
                            return Flow::Close("write failed");
                        }
                    }
                }
                Err(e) => {
                    self.ctx.events.log(None, json!({"event": "cmpp_bad_stream", "link": self.id, "error": e.to_string()}));
                    return Flow::Close("unframeable input");
                }
            }
        }
    }

    async fn on_pdu(&mut self, pdu: Pdu, stream: &mut TcpStream) -> Flow {
        let seq = pdu.sequence_id;
        match (pdu.body, self.version) {
            (Body::Connect(c), None) => self.on_connect(seq, c, stream).await,
            (Body::Connect(_), Some(_)) => Flow::Close("CONNECT on a logged-in link"),
            (_, None) => Flow::Close("PDU before login"),
            (Body::Submit(s), Some(v)) => self.on_submit(seq, s, v, stream).await,
            (Body::ActiveTest, Some(_)) => {
                self.ctx.with(|s| s.status.active_tests += 1);
                self.reply(stream, seq, Body::ActiveTestResp(Some(0))).await
            }
            (Body::Terminate, Some(_)) => {
                let _ = self.reply(stream, seq, Body::TerminateResp).await;
                Flow::Close("TERMINATE")
            }
            (Body::DeliverResp(r), Some(_)) => {
                // Answered (whatever the result): the report is settled. Matched by sequence
                // id, or by the DELIVER's Msg_Id that the response repeats.
                if self.unacked.remove(&seq).is_none() {
                    self.unacked.retain(
                        |_, t| !matches!(&t.body, Body::Deliver(d) if d.msg_id == r.msg_id),
                    );
                }
                Flow::Go
            }
            (Body::ActiveTestResp(_) | Body::TerminateResp, Some(_)) => Flow::Go,
            (other, Some(_)) => {
                self.ctx.events.log(None, json!({"event": "cmpp_ignored", "link": self.id, "command_id": other.command_id().to_u32()}));
                Flow::Go
            }
        }
    }

    pub(super) async fn reply(&mut self, stream: &mut TcpStream, seq: u32, body: Body) -> Flow {
        match self.write(stream, Pdu::new(seq, body)).await {
            Ok(()) => Flow::Go,
            Err(()) => Flow::Close("write failed"),
        }
    }

    /// Writes every timer that is due, in order of time (first pushed first on a tie).
    pub(super) async fn fire(&mut self, stream: &mut TcpStream) -> Flow {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut rest = Vec::new();
        for t in std::mem::take(&mut self.timers) {
            if t.at <= now {
                due.push(t);
            } else {
                rest.push(t);
            }
        }
        self.timers = rest;
        due.sort_by_key(|t| t.at);
        let mut due = due.into_iter();
        while let Some(t) = due.next() {
            if t.resp {
                self.pending = self.pending.saturating_sub(1);
            }
            if self.ctx.with(|s| s.faults.silent) {
                continue;
            }
            let seq = match t.sequence_id {
                Some(s) => s,
                None => self.next_seq(),
            };
            // A report is kept until its DELIVER_RESP (or handed on when the link closes).
            let report = (!t.resp).then(|| Timer {
                at: t.at,
                body: t.body.clone(),
                sequence_id: None,
                resp: false,
            });
            if self.write(stream, Pdu::new(seq, t.body)).await.is_err() {
                self.timers.extend(report);
                self.timers.extend(due.filter(|t| !t.resp));
                return Flow::Close("write failed");
            }
            if let Some(r) = report {
                self.unacked.insert(seq, r);
                self.ctx.with(|s| s.status.reports_sent += 1);
            }
        }
        Flow::Go
    }
}
