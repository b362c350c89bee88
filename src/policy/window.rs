//! Send windows: an account may only have messages sent within a daily window in a time zone,
//! e.g. `08:00-22:00 Asia/Shanghai`. Outside it, messages wait until the next allowed instant.
//!
//! What must always hold: the start is inclusive and the end exclusive; a window whose end is
//! before its start crosses midnight (22:00-06:00); equal ends mean all day; the textual form
//! round-trips through `parse` and `Display`. Decisions take `now` as an argument.

use std::fmt;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::PolicyError;

/// A daily send window in a time zone.
#[derive(Debug, Clone)]
pub struct SendWindow {
    start: Time,
    end: Time,
    tz_name: String,
    tz: TimeZone,
}

impl PartialEq for SendWindow {
    fn eq(&self, other: &Self) -> bool {
        self.start == other.start && self.end == other.end && self.tz_name == other.tz_name
    }
}

fn parse_hm(s: &str, what: &str, spec: &str) -> Result<Time, PolicyError> {
    let bad = || PolicyError::BadWindow {
        spec: spec.to_string(),
        detail: format!("{what} {s:?} is not HH:MM"),
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl SendWindow {
    /// Parses `HH:MM-HH:MM Zone/Name` (the zone defaults to Asia/Shanghai when omitted).
    pub fn parse(spec: &str) -> Result<SendWindow, PolicyError> {
        let mut it = spec.split_whitespace();
        let range = it.next().ok_or_else(|| PolicyError::BadWindow {
            spec: spec.to_string(),
            detail: "empty".into(),
        })?;
        let tz_name = it.next().unwrap_or("Asia/Shanghai").to_string();
        if it.next().is_some() {
            return Err(PolicyError::BadWindow {
                spec: spec.to_string(),
                detail: "expected `HH:MM-HH:MM Zone`".into(),
            });
        }
        let (a, b) = range
            .split_once('-')
            .ok_or_else(|| PolicyError::BadWindow {
                spec: spec.to_string(),
                detail: "expected `HH:MM-HH:MM`".into(),
            })?;
        let start = parse_hm(a, "start", spec)?;
        let end = parse_hm(b, "end", spec)?;
        let tz = TimeZone::get(&tz_name).map_err(|e| PolicyError::BadWindow {
            spec: spec.to_string(),
            detail: format!("time zone {tz_name:?}: {e}"),
        })?;
        Ok(SendWindow {
            start,
            end,
            tz_name,
            tz,
        })
    }

    fn allows(&self, t: Time) -> bool {
        if self.start == self.end {
            true
        } else if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// `None` when sending is allowed at `now`, else the next instant it is.
    pub fn next_allowed(&self, now: Timestamp) -> Option<Timestamp> {
        let z = now.to_zoned_datetime(self.tz.clone());
        if self.allows(z.time()) {
            return None;
        }
        // Outside the window: the next start is today if we are before it, else tomorrow.
        let date = if z.time() < self.start {
            z.date()
        } else {
            z.date().tomorrow().ok()?
        };
        let dt = date.to_datetime(self.start);
        // A start inside a DST gap resolves to the later, valid instant ("compatible").
        dt.to_zoned_datetime(self.tz.clone())
            .ok()
            .map(|z| z.timestamp())
    }
}

impl fmt::Display for SendWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02} {}",
            self.start.hour(),
            self.start.minute(),
            self.end.hour(),
            self.end.minute(),
            self.tz_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn inside_and_outside() {
        let w = SendWindow::parse("08:00-22:00 Asia/Shanghai").unwrap();
        assert_eq!(w.to_string(), "08:00-22:00 Asia/Shanghai");
        // 12:00 Shanghai = 04:00 UTC.
        assert_eq!(w.next_allowed(ts("2026-03-01T04:00:00Z")), None);
        // 23:00 Shanghai = 15:00 UTC: next is 08:00 tomorrow = 00:00 UTC next day.
        assert_eq!(
            w.next_allowed(ts("2026-03-01T15:00:00Z")),
            Some(ts("2026-03-02T00:00:00Z"))
        );
        // 07:00 Shanghai = 23:00 UTC the day before: next is 08:00 the same local day.
        assert_eq!(
            w.next_allowed(ts("2026-02-28T23:00:00Z")),
            Some(ts("2026-03-01T00:00:00Z"))
        );
        // 22:00 exactly is outside (end exclusive).
        assert!(w.next_allowed(ts("2026-03-01T14:00:00Z")).is_some());
    }

    #[test]
    fn crossing_midnight() {
        let w = SendWindow::parse("22:00-06:00 UTC").unwrap();
        assert_eq!(w.next_allowed(ts("2026-03-01T23:00:00Z")), None);
        assert_eq!(w.next_allowed(ts("2026-03-01T05:59:00Z")), None);
        assert_eq!(
            w.next_allowed(ts("2026-03-01T12:00:00Z")),
            Some(ts("2026-03-01T22:00:00Z"))
        );
    }

    #[test]
    fn bad_specs() {
        for s in [
            "",
            "8-22",
            "25:00-22:00",
            "08:00-22:00 Nowhere/City",
            "08:00-22:00 UTC x",
        ] {
            assert!(SendWindow::parse(s).is_err(), "{s:?}");
        }
    }
}
