//! Durations as people write them in the configuration and in requests: "30s", "6h", "2d",
//! "1w", "1h 30m" or ISO 8601 "PT6H", and the serde adapters for such fields. The configuration
//! owns these helpers; the API's request shapes reuse them (api reads config, never the reverse).
//!
//! What must always hold: a day is 24 hours; years and months are refused (their length depends
//! on the calendar); a duration is emitted in the same friendly format it is read in.

use jiff::SignedDuration;

/// A duration as people write it: "30s", "6h", "2d", "1w", "1h 30m" or ISO 8601 "PT6H";
/// a day is 24 hours. Years and months are refused (their length depends on the calendar).
pub fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    if let Ok(d) = s.parse::<SignedDuration>() {
        return Ok(d);
    }
    let span: jiff::Span = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration (e.g. \"30s\", \"6h\", \"2d\"): {e}"))?;
    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{s:?} is not a duration in days or smaller units: {e}"))
}

/// serde for [`SignedDuration`] fields written by people (see [`parse_duration`]); emitted in
/// the same friendly format ("6h").
pub mod duration {
    use jiff::SignedDuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &SignedDuration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{d:#}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SignedDuration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// [`duration`] for optional fields.
pub mod duration_opt {
    use jiff::SignedDuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<SignedDuration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SignedDuration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
