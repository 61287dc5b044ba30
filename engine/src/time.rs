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

/// 9999-12-31T23:59:59Z, the last second of [`YEARS`], in Unix seconds.
const LAST_SECOND: i64 = 253_402_300_799;

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

    /// The instant `days` days later, at most the last second of [`YEARS`].
    pub fn saturating_add_days(&self, days: u32) -> Self {
        let last =
            DateTime::<Utc>::from_timestamp(LAST_SECOND, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        Timestamp(
            self.0
                .checked_add_signed(chrono::Duration::days(i64::from(days)))
                .map_or(last, |t| t.min(last)),
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
        if let Some(t) = Timestamp::read_written(s) {
            return Ok(t);
        }
        Timestamp::read_general(s)
    }
}

impl Timestamp {
    /// The shape vouch writes (`2026-06-22T10:00:00Z`, which records nearly
    /// always hold), read without chrono's general RFC 3339 parser; `None`
    /// for anything else, which [`Timestamp::read_general`] reads. The
    /// property test `the_written_shape_reads_as_the_general_parser_reads`
    /// holds the two to the same answers.
    fn read_written(s: &str) -> Option<Timestamp> {
        use chrono::{Datelike, NaiveDate, NaiveTime};
        let b = s.as_bytes();
        let punctuation = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ];
        if b.len() != 20 || punctuation.iter().any(|&(i, c)| b[i] != c) {
            return None;
        }
        let number = |from: usize, to: usize| {
            b[from..to].iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let year = i32::try_from(number(0, 4)?).ok()?;
        let date = NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
        let time = NaiveTime::from_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)?;
        let at = date.and_time(time).and_utc();
        YEARS.contains(&at.year()).then_some(Timestamp(at))
    }

    /// Any RFC 3339 `date-time`: an offset, fractions of a second.
    fn read_general(s: &str) -> Result<Self, TimestampError> {
        use chrono::Datelike;
        // RFC 3339's `date-time` separates date and time with `T` (or `t`);
        // chrono also takes a space, which JSON Schema's `date-time` does not.
        if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
            return Err(TimestampError(s.to_owned()));
        }
        DateTime::parse_from_rfc3339(s)
            .ok()
            // A leap second (`:60`) is refused: written back it would read
            // `…:60Z`, which most consumers of a packet cannot parse.
            .filter(|t| t.timestamp_subsec_nanos() < 1_000_000_000)
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

/// The shape of every timestamp vouch writes: UTC, whole seconds, `Z`,
/// years 1970 to 9999.
pub const WRITTEN_PATTERN: &str = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$";
/// The shape of the timestamps vouch reads (what `FromStr` takes): RFC 3339
/// with an offset or `Z`, optional fractions, `T` or `t`.
pub const READ_PATTERN: &str = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    /// As written: UTC with `Z` and whole seconds. As read: any RFC 3339
    /// form `FromStr` takes (offset, fraction, lower-case `t`/`z`).
    /// Both in the years 1970 to 9999 (an offset can still move an instant
    /// just outside them: refused with the same message).
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        if generator.contract().is_serialize() {
            schemars::json_schema!({
                "type": "string",
                "format": "date-time",
                "pattern": WRITTEN_PATTERN,
                "description": "RFC 3339 in UTC with whole seconds, years 1970 to 9999"
            })
        } else {
            schemars::json_schema!({
                "type": "string",
                "format": "date-time",
                "pattern": READ_PATTERN,
                "description": "RFC 3339 in the years 1970 to 9999; converted to UTC and whole seconds on entry"
            })
        }
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
            // A leap second would be written back as `:60`.
            "2016-12-31T23:59:60Z",
            // RFC 3339 `date-time` has a `T`, not a space.
            "2026-06-22 10:00:00Z",
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

    proptest::proptest! {
        /// What the shape vouch writes is read as by chrono's general
        /// parser: the same instant, or refused by both; and every instant
        /// written in that shape is read by the fast path.
        #[test]
        fn the_written_shape_reads_as_the_general_parser_reads(
            s in "(19[6-9][0-9]|20[0-9]{2}|99[0-9]{2}|[0-9]{4})-[0-2][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9]Z",
            secs in 0i64..=LAST_SECOND,
        ) {
            let general = Timestamp::read_general(&s).ok();
            if let Some(fast) = Timestamp::read_written(&s) {
                proptest::prop_assert_eq!(Some(fast), general, "{}", s);
            } else {
                proptest::prop_assert!(general.is_none(), "{} is read only by the general parser", s);
            }
            let t = Timestamp::from_unix_seconds(secs).unwrap();
            proptest::prop_assert_eq!(Timestamp::read_written(&t.to_string()), Some(t));
        }

        /// The documented patterns say exactly what is read and written:
        /// whatever `FromStr` takes matches [`READ_PATTERN`], and what it
        /// writes back matches [`WRITTEN_PATTERN`].
        #[test]
        fn patterns_cover_what_is_read_and_written(
            s in "([0-9]{4}|19[6-9][0-9]|20[0-9]{2}|99[0-9]{2})-[01][0-9]-[0-3][0-9][Tt z][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{1,4})?([Zz]|[+-][0-2][0-9]:?[0-6][0-9])?"
        ) {
            let read = regex::Regex::new(READ_PATTERN).unwrap();
            let written = regex::Regex::new(WRITTEN_PATTERN).unwrap();
            if let Ok(t) = s.parse::<Timestamp>() {
                proptest::prop_assert!(read.is_match(&s), "{} was read but the pattern refuses it", s);
                proptest::prop_assert!(written.is_match(&t.to_string()), "{}", t);
            }
        }
    }
}
