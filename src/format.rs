//! Numbers and times as people read them in chat.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `1234.5` → `1,234.5`; whole numbers without decimals.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let rounded = (v * 10.0).round() / 10.0;
    let whole = rounded.trunc() as i64;
    let frac = (rounded.fract().abs() * 10.0).round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if rounded < 0.0 { "-" } else { "" };
    if frac == 0 {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

pub fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".into();
    }
    format!("{:.1} %", ratio * 100.0)
}

pub fn time_of_day(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

pub fn stamp(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

#[derive(Debug, Clone, Copy, PartialEq)]
/// How an amount moved from one period to the next.
pub enum Change {
    Ratio(f64),
    /// Nothing the day before, something yesterday.
    New,
    None,
}

impl Change {
    pub fn describe(self) -> String {
        match self {
            Change::Ratio(r) => format!("{:+.1} %", r * 100.0),
            Change::New => "new spend".into(),
            Change::None => "no change".into(),
        }
    }
}

pub fn change(now: f64, before: f64) -> Change {
    if before > 0.0 {
        Change::Ratio((now - before) / before)
    } else if now > 0.0 {
        Change::New
    } else {
        Change::None
    }
}

/// `1234.5` → `$1,234.50`.
pub fn usd(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let cents = (v.abs() * 100.0).round();
    let whole = number((cents / 100.0).trunc());
    let sign = if v < 0.0 && cents > 0.0 { "-" } else { "" };
    format!("{sign}${whole}.{:02}", (cents % 100.0) as u64)
}

pub fn signed_usd(v: f64) -> String {
    if v >= 0.0 {
        format!("+{}", usd(v))
    } else {
        usd(v)
    }
}

/// A time people read at a glance: the clock today, the date otherwise.
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.date_naive() == now.with_timezone(&tz).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%d.%m. %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1234.0), "1,234");
        assert_eq!(number(1234567.25), "1,234,567.3");
        assert_eq!(number(-12.5), "-12.5");
        assert_eq!(number(f64::NAN), "n/a");
        assert_eq!(percent(0.0312), "3.1 %");
    }
}
