//! Deserialisers that turn a setting into the value the code uses: a bad
//! value fails the load, named by its key (see `load.rs`), instead of being
//! parsed again, or defaulted, where it is used. Platform sections use
//! them too.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use serde::de::Error;
use serde::{Deserialize, Deserializer};

fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

/// An IANA time zone name such as `Europe/Berlin`.
pub fn time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = string(d)?;
    s.parse()
        .map_err(|_| D::Error::custom(format!("unknown time zone {s:?}")))
}

/// A local time of day, `HH:MM`.
pub fn time_of_day<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let s = string(d)?;
    crate::schedule::parse_time(&s)
        .ok_or_else(|| D::Error::custom(format!("{s:?} is not a time HH:MM")))
}

/// `monday` … `sunday` (or `Mon`, any case).
pub fn weekday<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
    let s = string(d)?;
    crate::schedule::parse_weekday(&s)
        .ok_or_else(|| D::Error::custom(format!("{s:?} is not a weekday (monday … sunday)")))
}

pub fn url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    url::Url::parse(&string(d)?).map_err(|e| D::Error::custom(format!("not a URL: {e}")))
}

/// For an optional key (give the field `#[serde(default)]` as well).
pub fn optional_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    url(d).map(Some)
}

/// An instant in RFC 3339, such as `2026-11-27T14:00:00Z`.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{s:?} is not an RFC 3339 time such as 2026-11-27T14:00:00Z"))
}

/// For an optional key (give the field `#[serde(default)]` as well).
pub fn optional_instant<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    parse_instant(&string(d)?)
        .map(Some)
        .map_err(D::Error::custom)
}

/// A count or a number of seconds that must not be 0.
pub fn at_least_one<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + From<u8>,
{
    let v = T::deserialize(d)?;
    if v < T::from(1) {
        return Err(D::Error::custom("must be at least 1"));
    }
    Ok(v)
}

/// For an optional key (give the field `#[serde(default)]` as well).
pub fn optional_at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    at_least_one(d).map(Some)
}

/// A key written in seconds (`…_seconds`).
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// A key written in milliseconds (`…_ms`).
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "time_zone")]
        tz: chrono_tz::Tz,
        #[serde(deserialize_with = "time_of_day")]
        at: NaiveTime,
        #[serde(deserialize_with = "weekday")]
        day: Weekday,
        #[serde(deserialize_with = "at_least_one")]
        n: u32,
        #[serde(deserialize_with = "millis")]
        pause: Duration,
        #[serde(default, deserialize_with = "optional_instant")]
        start: Option<DateTime<Utc>>,
    }

    fn sample(text: &str) -> Result<Sample, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn values_are_typed_at_load() {
        let ok = "tz = \"Europe/Berlin\"\nat = \"9:05\"\nday = \"Mon\"\nn = 2\npause = 1500\n";
        let s = sample(ok).expect("valid");
        assert_eq!(s.tz, chrono_tz::Europe::Berlin);
        assert_eq!(s.at, NaiveTime::from_hms_opt(9, 5, 0).expect("a time"));
        assert_eq!((s.day, s.n), (Weekday::Mon, 2));
        assert_eq!(s.pause, Duration::from_millis(1500));
        assert_eq!(s.start, None);
        for (bad, reason) in [
            ("tz = \"Mars/Base\"", "unknown time zone \"Mars/Base\""),
            ("at = \"9 am\"", "\"9 am\" is not a time HH:MM"),
            ("day = \"mo\"", "\"mo\" is not a weekday"),
            ("n = 0", "must be at least 1"),
            ("start = \"tomorrow\"", "not an RFC 3339 time"),
        ] {
            let key = bad.split(' ').next().unwrap_or_default();
            let text: String = ok
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} ")))
                .chain([bad])
                .map(|l| format!("{l}\n"))
                .collect();
            let err = sample(&text).expect_err(bad);
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }
}
