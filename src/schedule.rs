//! When a report is due: a local time of day on every day, on one weekday,
//! or on the first such weekday of a month, in a named time zone.
//!
//! Hand-written rather than a cron library because what matters is the
//! daylight-saving behaviour, and that is easiest to see (and test) here:
//! each slot is the local wall-clock time converted to UTC *on that day*, so
//! 09:00 Europe/Berlin is 08:00 UTC in winter and 07:00 UTC in summer. A
//! time that does not exist on a spring-forward day (02:30 in Berlin) runs
//! at the first instant after the gap; a time that exists twice on a
//! fall-back day runs at its first occurrence, once.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Which days a schedule fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    Every,
    /// Every week on this day.
    Weekly(Weekday),
    /// The first such weekday of each month (day 1 to 7).
    FirstOfMonth(Weekday),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub days: Days,
    pub at: NaiveTime,
    pub tz: Tz,
}

impl Schedule {
    fn fires_on(&self, day: NaiveDate) -> bool {
        match self.days {
            Days::Every => true,
            Days::Weekly(w) => day.weekday() == w,
            Days::FirstOfMonth(w) => day.weekday() == w && day.day() <= 7,
        }
    }

    /// The instant of this schedule's slot on local `day`, whether or not
    /// the schedule fires on that day.
    pub fn slot_on(&self, day: NaiveDate) -> DateTime<Utc> {
        local_instant(self.tz, day.and_time(self.at))
    }

    /// The latest slot at or before `now`.
    pub fn latest(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.tz).date_naive();
        // A monthly schedule fires at least once in any 38 days.
        (0..40)
            .map(|back| today - Duration::days(back))
            .filter(|d| self.fires_on(*d))
            .map(|d| self.slot_on(d))
            .find(|slot| *slot <= now)
    }

    /// The first slot strictly after `now`.
    pub fn next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&self.tz).date_naive();
        (-1..40)
            .map(|ahead| today + Duration::days(ahead))
            .filter(|d| self.fires_on(*d))
            .map(|d| self.slot_on(d))
            .find(|slot| *slot > now)
    }
}

/// A local wall-clock time as an instant: the earlier of two in a fall-back
/// overlap, the first instant after the gap in a spring-forward one.
fn local_instant(tz: Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap: step forward a minute at a time (gaps are at most a few
    // hours) to the first local time that exists.
    let mut probe = local;
    for _ in 0..(24 * 60) {
        probe += Duration::minutes(1);
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            // The gap ends on a whole minute; that minute is its first instant.
            return t.with_timezone(&Utc);
        }
    }
    // No zone has a day-long gap; UTC is a sane last resort.
    local.and_utc()
}

/// `"09:00"` → a time of day.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").ok()
}

/// `"monday"`, `"Mon"` → a weekday.
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    s.trim().parse::<Weekday>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn daily(at: &str) -> Schedule {
        Schedule {
            days: Days::Every,
            at: parse_time(at).unwrap_or_default(),
            tz: BERLIN,
        }
    }

    #[test]
    fn nine_in_berlin_follows_daylight_saving_in_march() {
        let s = daily("09:00");
        // Summer time starts on Sunday 29 March 2026 at 02:00 local.
        assert_eq!(
            s.next(utc("2026-03-27T12:00:00Z")),
            Some(utc("2026-03-28T08:00:00Z"))
        );
        assert_eq!(
            s.next(utc("2026-03-28T08:00:00Z")),
            Some(utc("2026-03-29T07:00:00Z"))
        );
        assert_eq!(
            s.latest(utc("2026-03-29T07:30:00Z")),
            Some(utc("2026-03-29T07:00:00Z"))
        );
        // An hour before the new 09:00, the old 09:00 (08:00 UTC) has not come.
        assert_eq!(
            s.latest(utc("2026-03-29T06:59:59Z")),
            Some(utc("2026-03-28T08:00:00Z"))
        );
    }

    #[test]
    fn nine_in_berlin_follows_daylight_saving_in_october() {
        let s = daily("09:00");
        // Winter time starts on Sunday 25 October 2026 at 03:00 local.
        assert_eq!(
            s.next(utc("2026-10-24T06:00:00Z")),
            Some(utc("2026-10-24T07:00:00Z"))
        );
        assert_eq!(
            s.next(utc("2026-10-24T07:00:00Z")),
            Some(utc("2026-10-25T08:00:00Z"))
        );
        // 07:00 UTC on the 25th is 08:00 local: not yet.
        assert_eq!(
            s.latest(utc("2026-10-25T07:30:00Z")),
            Some(utc("2026-10-24T07:00:00Z"))
        );
    }

    #[test]
    fn times_inside_the_gap_or_the_overlap_run_once() {
        // 02:30 does not exist on 29 March: it runs at 03:00 CEST (01:00 UTC).
        let s = daily("02:30");
        assert_eq!(
            s.slot_on(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap_or_default()),
            utc("2026-03-29T01:00:00Z")
        );
        // 02:30 exists twice on 25 October: the first (CEST, 00:30 UTC).
        assert_eq!(
            s.next(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            s.next(utc("2026-10-25T00:30:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn weekly_on_mondays() {
        let s = Schedule {
            days: Days::Weekly(Weekday::Mon),
            at: parse_time("10:00").unwrap_or_default(),
            tz: BERLIN,
        };
        // Friday 27 November 2026 → Monday 30 November, 10:00 CET.
        assert_eq!(
            s.next(utc("2026-11-27T12:00:00Z")),
            Some(utc("2026-11-30T09:00:00Z"))
        );
        assert_eq!(
            s.latest(utc("2026-11-27T12:00:00Z")),
            Some(utc("2026-11-23T09:00:00Z"))
        );
    }

    #[test]
    fn first_monday_of_a_month_that_starts_on_a_monday_or_a_tuesday() {
        let s = Schedule {
            days: Days::FirstOfMonth(Weekday::Mon),
            at: parse_time("10:00").unwrap_or_default(),
            tz: BERLIN,
        };
        // June 2026 starts on a Monday: the 1st.
        assert_eq!(
            s.next(utc("2026-05-31T12:00:00Z")),
            Some(utc("2026-06-01T08:00:00Z"))
        );
        // September 2026 starts on a Tuesday: the first Monday is the 7th,
        // not Monday 31 August (that is August's last).
        assert_eq!(
            s.next(utc("2026-08-31T12:00:00Z")),
            Some(utc("2026-09-07T08:00:00Z"))
        );
        assert_eq!(
            s.latest(utc("2026-09-06T12:00:00Z")),
            Some(utc("2026-08-03T08:00:00Z"))
        );
        // After June's slot the next is July's first Monday, the 6th.
        assert_eq!(
            s.next(utc("2026-06-01T08:00:00Z")),
            Some(utc("2026-07-06T08:00:00Z"))
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(parse_time("9:05"), NaiveTime::from_hms_opt(9, 5, 0));
        assert_eq!(parse_time("25:00"), None);
        assert_eq!(parse_weekday("Monday"), Some(Weekday::Mon));
        assert_eq!(parse_weekday("mon"), Some(Weekday::Mon));
        assert_eq!(parse_weekday("someday"), None);
    }
}
