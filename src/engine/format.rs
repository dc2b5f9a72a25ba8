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

pub fn clock(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

pub fn stamp(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
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
