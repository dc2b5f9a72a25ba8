//! `[silences]`: maintenance windows planned in the config. During a
//! window, the alarms its pattern matches (by alarm name or by the
//! function, database or cache they are about) are stored and listed in
//! the silenced-alarms digest, but open no incident and page nobody. A
//! window is either one stretch (`start`, `end`) or weekly (`days`,
//! `from`, `until`, in `display.timezone`; `until` before `from` ends the
//! next day).

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

use super::values;
use crate::domain::glob::Glob;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSettings {
    pub windows: Vec<MaintenanceWindow>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "WindowSection")]
pub struct MaintenanceWindow {
    pub name: String,
    /// Alarm names, or the names of what they are about.
    pub pattern: Glob,
    pub reason: String,
    pub when: WindowTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowTime {
    Once {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    Weekly {
        days: Vec<Weekday>,
        from: NaiveTime,
        until: NaiveTime,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSection {
    name: String,
    #[serde(rename = "match")]
    pattern: Glob,
    #[serde(default)]
    reason: String,
    #[serde(default, deserialize_with = "instant")]
    start: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "instant")]
    end: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "weekdays")]
    days: Option<Vec<Weekday>>,
    #[serde(default, deserialize_with = "time")]
    from: Option<NaiveTime>,
    #[serde(default, deserialize_with = "time")]
    until: Option<NaiveTime>,
}

impl TryFrom<WindowSection> for MaintenanceWindow {
    type Error = String;

    fn try_from(w: WindowSection) -> Result<Self, Self::Error> {
        if w.name.trim().is_empty() {
            return Err(
                "a window needs a `name`, which the digest and `/scale silences` show".into(),
            );
        }
        let when = match (w.start, w.end, w.days, w.from, w.until) {
            (Some(start), Some(end), None, None, None) if end > start => {
                WindowTime::Once { start, end }
            }
            (Some(_), Some(_), None, None, None) => {
                return Err(format!("window `{}`: `end` must be after `start`", w.name));
            }
            (None, None, Some(days), Some(from), Some(until))
                if !days.is_empty() && from != until =>
            {
                WindowTime::Weekly { days, from, until }
            }
            (None, None, Some(_), Some(_), Some(_)) => {
                return Err(format!(
                    "window `{}`: `days` must name at least one day and `from` and `until` must differ",
                    w.name
                ));
            }
            _ => {
                return Err(format!(
                    "window `{}` needs either `start` and `end` (RFC 3339) or `days`, `from` and `until` \
                     (weekly, HH:MM in display.timezone), not a mix",
                    w.name
                ));
            }
        };
        Ok(Self {
            name: w.name,
            pattern: w.pattern,
            reason: w.reason,
            when,
        })
    }
}

/// A quoted RFC 3339 string or a TOML date-time.
fn instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = match toml::Value::deserialize(d)? {
        toml::Value::String(s) => s,
        toml::Value::Datetime(t) => t.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "{other} is not an RFC 3339 time such as 2026-11-27T14:00:00Z"
            )));
        }
    };
    values::parse_instant(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
    values::time_of_day(d).map(Some)
}

fn weekdays<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Weekday>>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            crate::schedule::parse_weekday(s).ok_or_else(|| {
                serde::de::Error::custom(format!("{s:?} is not a weekday (monday … sunday)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The instant a local date and time is, the earliest of two in the
/// autumn's repeated hour, just after the spring's skipped one.
fn local(tz: Tz, day: NaiveDate, at: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = day.and_time(at);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

impl MaintenanceWindow {
    /// When the window that covers `now` ends; `None` outside it.
    pub fn active_until(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match &self.when {
            WindowTime::Once { start, end } => (*start <= now && now < *end).then_some(*end),
            WindowTime::Weekly { days, from, until } => {
                let today = now.with_timezone(&tz).date_naive();
                // Yesterday's window may run past midnight into today.
                [today.pred_opt()?, today].into_iter().find_map(|day| {
                    if !days.contains(&chrono::Datelike::weekday(&day)) {
                        return None;
                    }
                    let start = local(tz, day, *from)?;
                    let end_day = if until > from { day } else { day.succ_opt()? };
                    let end = local(tz, end_day, *until)?;
                    (start <= now && now < end).then_some(end)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    #[derive(Debug, Deserialize)]
    struct File {
        silences: SilenceSettings,
    }

    fn load(text: &str) -> Result<SilenceSettings, String> {
        parse::<File>(std::path::Path::new("x.toml"), text)
            .map(|f| f.silences)
            .map_err(|e| e.to_string())
    }

    fn utc(s: &str) -> DateTime<Utc> {
        values::parse_instant(s).expect("a time")
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn a_one_off_window_covers_its_stretch_only() {
        let s = load(
            "[[silences.windows]]\nname = \"db upgrade\"\nmatch = \"matbakh-*\"\n\
             start = \"2026-12-05T22:00:00Z\"\nend = 2026-12-06T02:00:00Z\n",
        )
        .expect("valid");
        let w = &s.windows[0];
        assert_eq!(w.active_until(utc("2026-12-05T21:59:59Z"), BERLIN), None);
        assert_eq!(
            w.active_until(utc("2026-12-06T01:00:00Z"), BERLIN),
            Some(utc("2026-12-06T02:00:00Z"))
        );
        assert_eq!(w.active_until(utc("2026-12-06T02:00:00Z"), BERLIN), None);
    }

    #[test]
    fn a_weekly_window_runs_past_midnight_in_local_time() {
        let s = load(
            "[[silences.windows]]\nname = \"load test\"\nmatch = \"persona-*\"\n\
             days = [\"saturday\"]\nfrom = \"22:00\"\nuntil = \"02:00\"\n",
        )
        .expect("valid");
        let w = &s.windows[0];
        // 2026-12-05 is a Saturday; Berlin is UTC+1 in December.
        assert_eq!(w.active_until(utc("2026-12-05T20:59:00Z"), BERLIN), None);
        assert_eq!(
            w.active_until(utc("2026-12-05T21:00:00Z"), BERLIN),
            Some(utc("2026-12-06T01:00:00Z"))
        );
        assert_eq!(
            w.active_until(utc("2026-12-06T00:30:00Z"), BERLIN),
            Some(utc("2026-12-06T01:00:00Z"))
        );
        assert_eq!(w.active_until(utc("2026-12-06T01:00:00Z"), BERLIN), None);
        // Friday night is not Saturday night.
        assert_eq!(w.active_until(utc("2026-12-04T22:00:00Z"), BERLIN), None);
    }

    #[test]
    fn bad_windows_name_their_key() {
        let head = "[[silences.windows]]\nname = \"w\"\n";
        for (body, expected) in [
            (
                "match = \"[x\"\nstart = \"2026-12-05T22:00:00Z\"\nend = \"2026-12-06T02:00:00Z\"\n",
                "key `silences.windows[0].match`: `[x` is not a name pattern",
            ),
            (
                "match = \"x\"\nstart = \"2026-12-06T22:00:00Z\"\nend = \"2026-12-06T02:00:00Z\"\n",
                "key `silences.windows[0]`: window `w`: `end` must be after `start`",
            ),
            (
                "match = \"x\"\ndays = [\"caturday\"]\nfrom = \"22:00\"\nuntil = \"23:00\"\n",
                "key `silences.windows[0].days`: \"caturday\" is not a weekday",
            ),
            (
                "match = \"x\"\ndays = [\"sat\"]\nfrom = \"25:00\"\nuntil = \"23:00\"\n",
                "key `silences.windows[0].from`",
            ),
            (
                "match = \"x\"\nstart = \"2026-12-05T22:00:00Z\"\nuntil = \"23:00\"\n",
                "needs either `start` and `end`",
            ),
        ] {
            let text = format!("{head}{body}");
            let e = load(&text).expect_err(&text);
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
