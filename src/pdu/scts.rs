//! Time stamps (TS 23.040 9.2.3.11): TP-SCTS, TP-DT and the absolute validity period. Seven
//! semi-octet-swapped BCD octets YY MM DD hh mm ss TZ; the zone counts quarter hours and its sign
//! is bit 3 of the zone octet's low nibble. Invariants: fields are kept as on the wire (a zone
//! written as "-0" stays "-0" when emitted again); parse rejects non-decimal digits and never
//! panics; calendar validity is checked only when converting to jiff.

use super::error::{invalid, take, PResult};

/// A service-centre time stamp with its time zone, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scts {
    /// Two-digit year, 0-99, meaning 2000-2099.
    pub year: u8,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Size of the zone offset in quarter hours (0-79).
    pub zone_quarters: u8,
    /// The sign bit: the zone is west of UTC (negative offset).
    pub zone_negative: bool,
}

impl Scts {
    /// Offset from UTC in seconds.
    pub fn offset_seconds(&self) -> i32 {
        let s = i32::from(self.zone_quarters) * 15 * 60;
        if self.zone_negative {
            -s
        } else {
            s
        }
    }

    /// As a civil date-time (the stamp's local time); None when not a real date and time.
    pub fn to_datetime(&self) -> Option<jiff::civil::DateTime> {
        jiff::civil::DateTime::new(
            2000 + i16::from(self.year),
            i8::try_from(self.month).ok()?,
            i8::try_from(self.day).ok()?,
            i8::try_from(self.hour).ok()?,
            i8::try_from(self.minute).ok()?,
            i8::try_from(self.second).ok()?,
            0,
        )
        .ok()
    }

    /// The zone as a jiff offset.
    pub fn offset(&self) -> jiff::tz::Offset {
        jiff::tz::Offset::from_seconds(self.offset_seconds()).unwrap_or(jiff::tz::Offset::UTC)
    }

    /// As an instant; None when the fields are not a real date and time.
    pub fn to_timestamp(&self) -> Option<jiff::Timestamp> {
        self.offset().to_timestamp(self.to_datetime()?).ok()
    }

    /// RFC 3339 with the stamp's own offset, e.g. "2008-06-24T09:22:04+02:00".
    pub fn to_rfc3339(&self) -> Option<String> {
        self.to_timestamp()?;
        let off = self.offset_seconds();
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.unsigned_abs();
        Some(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
            2000 + u32::from(self.year),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            sign,
            off / 3600,
            off % 3600 / 60
        ))
    }

    /// From an instant shown at a fixed offset, rounded to whole quarter hours (the wire's unit).
    /// Years outside 2000-2099 wrap to their last two digits.
    pub fn from_timestamp(ts: jiff::Timestamp, offset_seconds: i32) -> Scts {
        let quarters = (offset_seconds / 900).clamp(-79, 79);
        let off = jiff::tz::Offset::from_seconds(quarters * 900).unwrap_or(jiff::tz::Offset::UTC);
        let dt = off.to_datetime(ts);
        Scts {
            year: dt.year().rem_euclid(100) as u8,
            month: dt.month() as u8,
            day: dt.day() as u8,
            hour: dt.hour() as u8,
            minute: dt.minute() as u8,
            second: dt.second() as u8,
            zone_quarters: quarters.unsigned_abs() as u8,
            zone_negative: quarters < 0,
        }
    }

    /// From a zoned date-time, keeping its offset.
    pub fn from_zoned(z: &jiff::ZonedDateTime) -> Scts {
        Scts::from_timestamp(z.timestamp(), z.offset().seconds())
    }

    pub(crate) fn parse(input: &[u8]) -> PResult<'_, Scts> {
        let (rest, b) = take(input, 7)?;
        let mut v = [0u8; 6];
        for (i, slot) in v.iter_mut().enumerate() {
            let o = b.get(i).copied().unwrap_or(0);
            if o & 0x0F > 9 || o >> 4 > 9 {
                return invalid(
                    input.get(i..).unwrap_or_default(),
                    "time stamp",
                    "a semi-octet is not a decimal digit",
                );
            }
            *slot = (o & 0x0F) * 10 + (o >> 4);
        }
        let z = b.get(6).copied().unwrap_or(0);
        if z >> 4 > 9 {
            return invalid(
                input.get(6..).unwrap_or_default(),
                "time zone",
                "a semi-octet is not a decimal digit",
            );
        }
        Ok((
            rest,
            Scts {
                year: v[0],
                month: v[1],
                day: v[2],
                hour: v[3],
                minute: v[4],
                second: v[5],
                zone_quarters: (z & 0x07) * 10 + (z >> 4),
                zone_negative: z & 0x08 != 0,
            },
        ))
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let swap = |v: u8| {
            let v = v % 100;
            (v / 10) | ((v % 10) << 4)
        };
        out.extend_from_slice(&[
            swap(self.year),
            swap(self.month),
            swap(self.day),
            swap(self.hour),
            swap(self.minute),
            swap(self.second),
        ]);
        let q = self.zone_quarters.min(79);
        out.push((q / 10) | ((q % 10) << 4) | if self.zone_negative { 0x08 } else { 0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_hex(h: &str) -> Scts {
        Scts::parse(&hex::decode(h).unwrap()).unwrap().1
    }

    #[test]
    fn zone_octets_from_domain_notes() {
        // DOMAIN.md: +08:00 = 0x23, +02:00 = 0x80, -03:00 = 0x29, -04:00 = 0x69, UTC as 0x08.
        for (z, secs) in [
            ("23", 8 * 3600),
            ("80", 2 * 3600),
            ("29", -3 * 3600),
            ("69", -4 * 3600),
            ("08", 0),
        ] {
            let s = parse_hex(&format!("208062917314{z}"));
            assert_eq!(s.offset_seconds(), secs, "{z}");
            let mut o = Vec::new();
            s.emit(&mut o);
            assert_eq!(hex::encode_upper(&o), format!("208062917314{z}"));
        }
        assert_eq!(
            parse_hex("80604290224080").to_rfc3339().unwrap(),
            "2008-06-24T09:22:04+02:00"
        );
    }

    #[test]
    fn bad_digits_and_dates() {
        assert!(Scts::parse(&hex::decode("2A8062917314").unwrap()).is_err());
        assert!(Scts::parse(&hex::decode("2A806291731408").unwrap()).is_err());
        assert!(parse_hex("00000000000000").to_rfc3339().is_none());
    }

    #[test]
    fn from_timestamp_round_trips() {
        let ts: jiff::Timestamp = "2026-11-24T12:00:05Z".parse().unwrap();
        let s = Scts::from_timestamp(ts, 8 * 3600);
        assert_eq!(s.to_rfc3339().unwrap(), "2026-11-24T20:00:05+08:00");
        assert_eq!(s.to_timestamp().unwrap(), ts);
    }
}
