//! How bad an incident is, as the config's rules and
//! `/scale incident <id> severity` say: an enum in the code, text in the
//! store and the config.

use std::fmt;
use std::str::FromStr;

use super::DomainError;

/// Ordered from least to most severe, so `max` picks the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The word with a marker people can scan for in a busy channel.
    pub fn badge(self) -> String {
        let mark = match self {
            Severity::Critical => "🔴",
            Severity::High => "🟠",
            Severity::Medium => "🟡",
            Severity::Low => "🔵",
        };
        format!("{mark} {}", self.as_str())
    }

    /// `critical, high, medium or low`, for error sentences.
    pub fn choices() -> String {
        let words: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
        let (last, rest) = words.split_last().unwrap_or((&"", &[]));
        format!("{} or {last}", rest.join(", "))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                DomainError(format!(
                    "`{}` is not a severity: use {}",
                    super::truncate(s, 40),
                    Self::choices()
                ))
            })
    }
}

impl TryFrom<String> for Severity {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

/// An escalation level, L1 to L4, as a rule starts an incident at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "i64")]
pub struct Level(i64);

impl Level {
    pub const FIRST: Level = Level(1);

    pub fn new(n: i64) -> Result<Self, DomainError> {
        if (1..=4).contains(&n) {
            Ok(Self(n))
        } else {
            Err(DomainError(format!(
                "{n} is not an escalation level: levels are 1 (L1) to 4 (L4)"
            )))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Level {
    type Error = DomainError;

    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Self::new(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_from_their_words_only() {
        assert_eq!("Critical".parse::<Severity>(), Ok(Severity::Critical));
        assert_eq!(" low ".parse::<Severity>(), Ok(Severity::Low));
        let e = "urgent".parse::<Severity>().expect_err("not one");
        assert!(e.0.contains("critical, high, medium or low"), "{}", e.0);
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
    }

    #[test]
    fn levels_are_one_to_four() {
        assert!(Level::new(0).is_err() && Level::new(5).is_err());
        assert_eq!(Level::new(4).map(Level::get), Ok(4));
    }
}
