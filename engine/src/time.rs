//! Timestamps and assessment periods.
//!
//! Every timestamp vouch writes is RFC 3339 in UTC with a `Z` suffix and whole
//! seconds (`2026-06-22T10:00:00Z`). Timestamps that enter (records, CLI flags)
//! may carry any offset and fractions of a second; they are converted to UTC and
//! truncated to the second where they enter, never later.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Months, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with whole-second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// A timestamp string that is not RFC 3339, or not in years 1970 to 9999 once
/// converted to UTC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 timestamp in the years 1970 to 9999 UTC (expected e.g. 2026-06-22T10:00:00Z)")]
pub struct TimestampError(pub String);

/// The years a timestamp may fall in (UTC): what every consumer of a packet
/// can parse as RFC 3339 (four-digit years) and what a Unix clock can hold.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

impl Timestamp {
    /// Truncates `at` to whole seconds.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.trunc_subsecs(0))
    }

    /// The instant `secs` seconds after the Unix epoch (as databases store it);
    /// `None` when out of range.
    pub fn from_unix_seconds(secs: i64) -> Option<Self> {
        DateTime::from_timestamp(secs, 0).map(Timestamp)
    }

    /// The instant as a chrono value.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    /// The instant `duration` earlier, saturating at the earliest representable instant.
    pub fn saturating_sub(&self, duration: std::time::Duration) -> Self {
        let d = chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        Timestamp(
            self.0
                .checked_sub_signed(d)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    }

    /// Whether the instant falls in [`YEARS`] (UTC).
    pub fn in_range(&self) -> bool {
        use chrono::Datelike;
        YEARS.contains(&self.0.year())
    }

    /// `YYYY-MM`, as used in key identifiers.
    pub fn year_month(&self) -> String {
        self.0.format("%Y-%m").to_string()
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use chrono::Datelike;
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Timestamp::from_datetime(t.with_timezone(&Utc)))
            .filter(|t| YEARS.contains(&t.0.year()))
            .ok_or_else(|| TimestampError(s.to_owned()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 timestamp; converted to UTC and whole seconds on entry"
        })
    }
}

/// The assessment period a packet covers: `start` inclusive, `end` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A period whose start is after its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period_start {start} is after period_end {end}")]
pub struct PeriodError {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    /// A period from `start` to `end`; refused when `start > end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, PeriodError> {
        if start > end {
            return Err(PeriodError { start, end });
        }
        Ok(Period { start, end })
    }

    /// The calendar month ending at `end`: 2026-06-22T10:00:00Z gives
    /// 2026-05-22T10:00:00Z .. 2026-06-22T10:00:00Z. Where the earlier month is
    /// shorter (March 31st), the start is that month's last day.
    pub fn month_ending_at(end: Timestamp) -> Self {
        let start = end
            .0
            .checked_sub_months(Months::new(1))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        Period {
            start: Timestamp(start),
            end,
        }
    }

    /// Whether `t` lies within the period, both ends included.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t <= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn formats_utc_whole_seconds() {
        assert_eq!(
            ts("2026-06-22T12:00:00.987+02:00").to_string(),
            "2026-06-22T10:00:00Z"
        );
    }

    #[test]
    fn unix_seconds_round_trip() {
        let t = Timestamp::from_unix_seconds(1_782_122_400).unwrap();
        assert_eq!(t.to_string(), "2026-06-22T10:00:00Z");
        assert_eq!(t.unix_seconds(), 1_782_122_400);
        assert!(Timestamp::from_unix_seconds(i64::MAX).is_none());
    }

    #[test]
    fn default_period_is_the_calendar_month_before() {
        let p = Period::month_ending_at(ts("2026-06-22T10:00:00Z"));
        assert_eq!(p.start.to_string(), "2026-05-22T10:00:00Z");
        let p = Period::month_ending_at(ts("2026-03-31T00:00:00Z"));
        assert_eq!(p.start.to_string(), "2026-02-28T00:00:00Z");
    }

    #[test]
    fn refuses_garbage_and_inverted_periods() {
        assert!("yesterday".parse::<Timestamp>().is_err());
        // Years outside 1970..=9999, as written or once converted to UTC.
        for bad in [
            "0000-01-15T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
        assert_eq!(
            ts("2026-06-22T12:00:00+02:00").to_string(),
            "2026-06-22T10:00:00Z",
            "offsets are normalized to Z"
        );
        assert!(ts("1970-01-01T00:00:00Z").in_range() && ts("9999-12-31T23:59:59Z").in_range());
        assert!(Period::new(ts("2026-02-01T00:00:00Z"), ts("2026-01-01T00:00:00Z")).is_err());
    }
}
