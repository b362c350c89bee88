//! Kept status reports: a link that closes gives every report it still owes (due, written
//! and not answered by a DELIVER_RESP, or handed to it after it stopped reading) to another
//! logged-in link of the SP, keeping their due times, or to the shared waiting list that the
//! next login takes. What must hold: the closing link leaves the links map before it drains
//! its channel, and a report is handed to another link only while that link is in the map
//! (under the mutex), so a report is never lost between two closing links.

use serde_json::json;
use tokio::sync::mpsc;

use super::link::{Link, Timer};
use super::LinkCmd;
use crate::cmpp::{Body, DeliverContent, Version};

impl Link {
    /// Leaves the links map, then gives every report not acknowledged on this link (due,
    /// written and unanswered, or handed here after the link stopped reading) to another
    /// logged-in link, or keeps it for the next login.
    pub(super) fn hand_off_reports(&mut self, rx: &mut mpsc::Receiver<LinkCmd>) {
        let id = self.id;
        self.ctx.with(|s| s.links.remove(&id));
        // Out of the map now: nothing more is handed here, and what was is in the channel.
        while let Ok(cmd) = rx.try_recv() {
            if let LinkCmd::Adopt(timers) = cmd {
                self.timers.extend(timers);
            }
        }
        let mut kept: Vec<Timer> = std::mem::take(&mut self.unacked).into_values().collect();
        kept.extend(
            std::mem::take(&mut self.timers)
                .into_iter()
                .filter(|t| !t.resp),
        );
        if kept.is_empty() {
            return;
        }
        let n = kept.len();
        let to = self.ctx.with(|s| {
            s.status.reports_kept += n as u64;
            let mut kept = Some(kept);
            for (other, l) in &s.links {
                if l.version.is_none() {
                    continue;
                }
                // Sent under the mutex: `other` is in the map, so it has not drained its
                // channel yet and will find them there if it closes now.
                match l
                    .tx
                    .try_send(LinkCmd::Adopt(kept.take().unwrap_or_default()))
                {
                    Ok(()) => return Some(*other),
                    Err(e) => {
                        if let LinkCmd::Adopt(t) = e.into_inner() {
                            kept = Some(t);
                        }
                    }
                }
            }
            s.waiting.extend(kept.unwrap_or_default());
            None
        });
        self.ctx.events.log(
            None,
            json!({"event": "cmpp_reports_kept", "link": id, "reports": n, "to_link": to}),
        );
    }

    /// Takes reports of a closed link; each is re-laid out for this link's version.
    pub(super) fn adopt(&mut self, timers: Vec<Timer>) {
        let v = self.v();
        let short = self.ctx.with(|s| s.faults.short_reports);
        for mut t in timers {
            if let Body::Deliver(d) = &mut t.body {
                if let DeliverContent::Report(r) = &mut d.content {
                    // A 3.0 recipient longer than 21 octets does not fit a 60-byte report.
                    r.layout = if (v == Version::V30 && !short) || r.dest_terminal_id.len() > 21 {
                        Version::V30
                    } else {
                        Version::V20
                    };
                }
            }
            self.timers.push(t);
        }
    }
}
