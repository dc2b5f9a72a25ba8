//! How long a silence lasts, as people type it: `30m`, `2h`, `1d`,
//! `1h30m`. Bounded: a silence is for a deploy or a load test, not a way to
//! switch alarms off for good (that is the alarm's own business, or a
//! maintenance window in the config).

use std::fmt;

use super::DomainError;

/// A silence's length: more than nothing, at most [`SilenceLength::MAX_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceLength(chrono::Duration);

impl SilenceLength {
    pub const MAX_DAYS: i64 = 7;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let shown = super::truncate(raw.trim(), 20);
        let total = minutes(raw.trim()).ok_or_else(|| {
            DomainError(format!(
                "`{shown}` is not a duration: write a number and a unit (m, h or d), e.g. 30m, 2h or 1d"
            ))
        })?;
        if total == 0 {
            return Err(DomainError(format!(
                "`{shown}` silences nothing: a silence lasts at least a minute (e.g. 30m, 2h or 1d)"
            )));
        }
        if total > Self::MAX_DAYS * 24 * 60 {
            return Err(DomainError(format!(
                "`{shown}` is too long: a silence lasts at most {} days; for planned work that repeats, \
                 add a maintenance window to `[[silences.windows]]` in the config",
                Self::MAX_DAYS
            )));
        }
        Ok(Self(chrono::Duration::minutes(total)))
    }

    pub fn duration(self) -> chrono::Duration {
        self.0
    }
}

/// `1h30m` → 90; `None` for anything but number–unit pairs. Saturating
/// sums, so a huge number is "too long" rather than an overflow.
fn minutes(raw: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut pairs = 0;
    for c in raw.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            'm' => 1,
            'h' => 60,
            'd' => 24 * 60,
            _ => return None,
        };
        if digits.is_empty() {
            return None;
        }
        let n: i64 = digits.parse().unwrap_or(i64::MAX);
        total = total.saturating_add(n.saturating_mul(unit));
        digits.clear();
        pairs += 1;
    }
    (digits.is_empty() && pairs > 0).then_some(total)
}

impl fmt::Display for SilenceLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0.num_minutes();
        let (d, h, m) = (m / 1440, (m % 1440) / 60, m % 60);
        let mut parts = Vec::new();
        if d > 0 {
            parts.push(format!("{d} d"));
        }
        if h > 0 {
            parts.push(format!("{h} h"));
        }
        if m > 0 {
            parts.push(format!("{m} min"));
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_as_people_type_them() {
        let min = |s: &str| SilenceLength::parse(s).map(|l| l.duration().num_minutes());
        assert_eq!(min("30m"), Ok(30));
        assert_eq!(min("2h"), Ok(120));
        assert_eq!(min("1d"), Ok(1440));
        assert_eq!(min("1h30m"), Ok(90));
        assert_eq!(min("7d"), Ok(7 * 1440));
        assert_eq!(
            SilenceLength::parse("1h30m").map(|l| l.to_string()),
            Ok("1 h 30 min".into())
        );
    }

    #[test]
    fn nothing_too_long_or_garbled_is_refused_with_a_sentence() {
        for (raw, says) in [
            ("0m", "silences nothing"),
            ("0d", "silences nothing"),
            ("7d1m", "at most 7 days"),
            ("8d", "at most 7 days"),
            ("99999999999999999999d", "at most 7 days"),
            ("soon", "not a duration"),
            ("30", "not a duration"),
            ("m", "not a duration"),
            ("-1h", "not a duration"),
            ("", "not a duration"),
        ] {
            let e = SilenceLength::parse(raw).expect_err(raw);
            assert!(e.0.contains(says), "{raw}: {}", e.0);
        }
    }
}
