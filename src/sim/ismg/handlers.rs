//! The gateway's answers to a client's requests on one link: CONNECT (SP id, MD5
//! authenticator, version; a refusal closes the link, a login takes the reports kept while
//! no link was logged in) and SUBMIT (window, flow control and structure checks, Msg_Id
//! numbering with n consecutive ids for n recipients, the SUBMIT_RESP after `latency` and
//! the status reports after `report_delay`, or before the response with `reports-first`).
//! What must hold: the Msg_Id sequence advances under the shared mutex, so two links never
//! give the same id; every SUBMIT is answered exactly once.

use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::link::{Flow, Link, Timer};
use super::version_name;
use crate::cmpp::{
    self, connect_status, Body, ConnectResp, Deliver, DeliverContent, MsgId, MsgIdResult, Pdu,
    StatusReport, Version,
};

impl Link {
    pub(super) async fn on_connect(
        &mut self,
        seq: u32,
        c: cmpp::Connect,
        stream: &mut TcpStream,
    ) -> Flow {
        let cfg = &self.ctx.cfg;
        let asked = Version::from_byte(c.version);
        let auth_fail = self.ctx.with(|s| s.faults.auth_fail);
        let status = if c.source_addr != cfg.sp_id.as_bytes() {
            connect_status::ILLEGAL_SOURCE
        } else if auth_fail || !c.verify(&cfg.secret) {
            connect_status::AUTH_FAILED
        } else if asked == Version::V30 && cfg.max_version == Version::V20 {
            connect_status::VERSION_TOO_HIGH
        } else {
            connect_status::OK
        };
        // A refusal for the version goes out in the layout the gateway speaks (2.0).
        let layout = if status == connect_status::VERSION_TOO_HIGH {
            Version::V20
        } else {
            asked
        };
        let resp = ConnectResp {
            status,
            authenticator_ismg: cmpp::authenticator_ismg(
                status,
                layout,
                &c.authenticator_source,
                &cfg.secret,
            ),
            version: cfg.max_version.byte(),
        };
        let sp = String::from_utf8_lossy(&c.source_addr).into_owned();
        self.ctx.events.log(
            None,
            json!({"event": "cmpp_login", "link": self.id, "sp_id": sp, "version": format!("{:#04x}", c.version), "status": status}),
        );
        let sent = self
            .write_in(stream, Pdu::new(seq, Body::ConnectResp(resp)), layout)
            .await;
        let id = self.id;
        if status != connect_status::OK {
            self.ctx.with(|s| s.status.logins_refused += 1);
            return Flow::Close("login refused");
        }
        self.version = Some(asked);
        // Reports kept while no link was logged in go out after this CONNECT_RESP.
        let waiting = self.ctx.with(|s| {
            s.status.logins_ok += 1;
            if let Some(l) = s.links.get_mut(&id) {
                l.version = Some(asked);
            }
            std::mem::take(&mut s.waiting)
        });
        if !waiting.is_empty() {
            self.ctx.events.log(
                None,
                json!({"event": "cmpp_reports_resent", "link": id, "reports": waiting.len()}),
            );
            self.adopt(waiting);
        }
        match sent {
            Ok(()) => Flow::Go,
            Err(()) => Flow::Close("write failed"),
        }
    }

    pub(super) async fn on_submit(
        &mut self,
        seq: u32,
        sub: cmpp::Submit,
        v: Version,
        stream: &mut TcpStream,
    ) -> Flow {
        let cfg = &self.ctx.cfg;
        if self.pending >= cfg.window {
            self.ctx.with(|s| s.status.window_full += 1);
            self.ctx.events.log(None, json!({"event": "cmpp_window_full", "link": self.id, "seq": seq, "window": cfg.window}));
            let body = Body::SubmitResp(MsgIdResult {
                msg_id: 0,
                result: 8,
            });
            return self.reply(stream, seq, body).await;
        }
        let rate = self.ctx.with(|s| s.faults.flow_control_rate);
        let refused = if rate > 0.0 && rand::rng().random::<f64>() < rate {
            Some(8)
        } else if sub.dest_terminal_ids.is_empty()
            || sub.dest_terminal_ids.iter().any(Vec::is_empty)
        {
            Some(13)
        } else if sub.src_id.is_empty() {
            Some(10)
        } else {
            None
        };
        if let Some(result) = refused {
            self.ctx.with(|s| {
                if result == 8 {
                    s.status.flow_controlled += 1;
                }
            });
            self.ctx.events.log(None, json!({"event": "cmpp_submit_refused", "link": self.id, "seq": seq, "result": result}));
            let body = Body::SubmitResp(MsgIdResult { msg_id: 0, result });
            return self.reply(stream, seq, body).await;
        }
        // n recipients get Msg_Id, Msg_Id+1, ...: the sequence advances by n.
        let n = sub.dest_terminal_ids.len() as u16;
        let now_utc = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
        let first = self.ctx.with(|s| {
            let first = s.msg_seq;
            s.msg_seq = s.msg_seq.wrapping_add(n);
            s.status.submits_accepted += u64::from(n);
            first
        });
        let base = MsgId {
            month: now_utc.month() as u8,
            day: now_utc.day() as u8,
            hour: now_utc.hour() as u8,
            minute: now_utc.minute() as u8,
            second: now_utc.second() as u8,
            gateway: cfg.gateway_code,
            sequence: first,
        };
        let content_hex: String = sub.msg_content.iter().map(|b| format!("{b:02x}")).collect();
        let mut ids = Vec::new();
        for (i, dest) in sub.dest_terminal_ids.iter().enumerate() {
            let id = MsgId {
                sequence: first.wrapping_add(i as u16),
                ..base
            }
            .build();
            ids.push((id, dest.clone()));
            self.ctx.events.log(
                None,
                json!({
                    "event": "cmpp_submit",
                    "link": self.id,
                    "version": version_name(v),
                    "seq": seq,
                    "msg_id": id,
                    "src_id": String::from_utf8_lossy(&sub.src_id),
                    "dest": String::from_utf8_lossy(dest),
                    "pk_total": sub.pk_total,
                    "pk_number": sub.pk_number,
                    "msg_fmt": sub.msg_fmt.to_u8(),
                    "udhi": sub.tp_udhi,
                    "registered_delivery": sub.registered_delivery,
                    "service_id": String::from_utf8_lossy(&sub.service_id),
                    "content": content_hex,
                }),
            );
        }
        let (reports_first, short) = self
            .ctx
            .with(|s| (s.faults.reports_first, s.faults.short_reports));
        let now = Instant::now();
        let resp_at = now + cfg.latency;
        let report_at = resp_at + cfg.report_delay;
        if sub.registered_delivery == 1 {
            let layout = if v == Version::V30 && !short {
                Version::V30
            } else {
                Version::V20
            };
            for (id, dest) in &ids {
                // A 3.0 recipient longer than 21 octets does not fit a 60-byte report.
                let layout = if dest.len() > 21 {
                    Version::V30
                } else {
                    layout
                };
                let yymmddhhmm = now_utc.strftime("%y%m%d%H%M").to_string();
                let report = StatusReport {
                    msg_id: *id,
                    stat: b"DELIVRD".to_vec(),
                    submit_time: yymmddhhmm.clone().into_bytes(),
                    done_time: yymmddhhmm.into_bytes(),
                    dest_terminal_id: dest.clone(),
                    smsc_sequence: u32::from(base.sequence),
                    layout,
                };
                let mut d = Deliver::new(&sub.src_id, dest, DeliverContent::Report(report));
                d.msg_id = *id;
                d.service_id = sub.service_id.clone();
                let at = if reports_first { now } else { report_at };
                self.timers.push(Timer {
                    at,
                    body: Body::Deliver(d),
                    sequence_id: None,
                    resp: false,
                });
            }
        }
        // With reports first, the response waits until the reports went (the timers fire in
        // order of time, and a report due at the same instant is pushed first).
        let resp_at = if reports_first && sub.registered_delivery == 1 {
            resp_at.max(now) + Duration::from_millis(1)
        } else {
            resp_at
        };
        self.pending += 1;
        self.timers.push(Timer {
            at: resp_at,
            body: Body::SubmitResp(MsgIdResult {
                msg_id: ids[0].0,
                result: 0,
            }),
            sequence_id: Some(seq),
            resp: true,
        });
        if cfg.latency.is_zero() && !(reports_first && sub.registered_delivery == 1) {
            return self.fire(stream).await;
        }
        Flow::Go
    }
}
