//! `[severities]`: which severity and starting escalation level an alarm
//! gets, by its name (a pattern), its metric or namespace, or the default.
//! The first rule that matches wins, so specific rules go first.

use serde::Deserialize;

use crate::domain::glob::Glob;
use crate::domain::severity::{Level, Severity};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeveritySettings {
    /// For an alarm no rule matches.
    pub default: Severity,
    /// The level such an alarm starts at (and a rule without `level`).
    pub default_level: Level,
    pub rules: Vec<SeverityRule>,
}

/// One rule: every key it gives must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RuleSection")]
pub struct SeverityRule {
    pub alarm: Option<Glob>,
    pub metric: Option<Glob>,
    pub namespace: Option<Glob>,
    pub severity: Severity,
    pub level: Option<Level>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    alarm: Option<Glob>,
    metric: Option<Glob>,
    namespace: Option<Glob>,
    severity: Severity,
    level: Option<Level>,
}

impl TryFrom<RuleSection> for SeverityRule {
    type Error = &'static str;

    fn try_from(r: RuleSection) -> Result<Self, Self::Error> {
        if r.alarm.is_none() && r.metric.is_none() && r.namespace.is_none() {
            return Err(
                "a rule needs `alarm` (a name pattern), `metric` or `namespace`; \
                 for every other alarm set `severities.default`",
            );
        }
        Ok(Self {
            alarm: r.alarm,
            metric: r.metric,
            namespace: r.namespace,
            severity: r.severity,
            level: r.level,
        })
    }
}

/// What an alarm is matched on.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlarmFacts<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub metric: Option<&'a str>,
}

impl SeverityRule {
    fn matches(&self, a: &AlarmFacts<'_>) -> bool {
        let fits = |pattern: &Option<Glob>, value: Option<&str>| match pattern {
            None => true,
            Some(p) => value.is_some_and(|v| p.matches(v)),
        };
        fits(&self.alarm, Some(a.name))
            && fits(&self.metric, a.metric)
            && fits(&self.namespace, a.namespace)
    }
}

impl SeveritySettings {
    /// The first matching rule's severity and level, else the defaults.
    pub fn classify(&self, alarm: &AlarmFacts<'_>) -> (Severity, Level) {
        match self.rules.iter().find(|r| r.matches(alarm)) {
            Some(rule) => (rule.severity, rule.level.unwrap_or(self.default_level)),
            None => (self.default, self.default_level),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    #[derive(Debug, Deserialize)]
    struct File {
        severities: SeveritySettings,
    }

    fn load(text: &str) -> Result<SeveritySettings, String> {
        parse::<File>(std::path::Path::new("x.toml"), text)
            .map(|f| f.severities)
            .map_err(|e| e.to_string())
    }

    const RULES: &str = r#"
[severities]
default = "medium"
default_level = 1
[[severities.rules]]
alarm = "prod-*-critical"
severity = "critical"
level = 3
[[severities.rules]]
metric = "Throttles"
namespace = "AWS/Lambda"
severity = "high"
level = 2
[[severities.rules]]
namespace = "AWS/Billing"
severity = "low"
"#;

    #[test]
    fn the_first_matching_rule_wins() {
        let s = load(RULES).expect("valid");
        let facts = |name, namespace, metric| AlarmFacts {
            name,
            namespace: Some(namespace),
            metric: Some(metric),
        };
        let got = |f: AlarmFacts<'_>| {
            let (sev, level) = s.classify(&f);
            (sev, level.get())
        };
        // Both the name rule and the metric rule match: the first wins.
        assert_eq!(
            got(facts("prod-api-critical", "AWS/Lambda", "Throttles")),
            (Severity::Critical, 3)
        );
        assert_eq!(
            got(facts("api-throttles", "AWS/Lambda", "Throttles")),
            (Severity::High, 2)
        );
        // A rule without a level starts at the default level.
        assert_eq!(
            got(facts("bill", "AWS/Billing", "EstimatedCharges")),
            (Severity::Low, 1)
        );
        assert_eq!(
            got(facts("api-errors", "AWS/Lambda", "Errors")),
            (Severity::Medium, 1)
        );
        // Metric math has no metric: a metric rule does not match it.
        let math = AlarmFacts {
            name: "api-rate",
            ..Default::default()
        };
        assert_eq!(got(math), (Severity::Medium, 1));
    }

    #[test]
    fn bad_rules_name_their_key() {
        for (text, expected) in [
            (
                "[[severities.rules]]\nalarm = \"fn-[\"\nseverity = \"low\"\n",
                "key `severities.rules[0].alarm`: `fn-[` is not a name pattern",
            ),
            (
                "[[severities.rules]]\nalarm = \"x\"\nseverity = \"low\"\nlevel = 5\n",
                "key `severities.rules[0].level`: 5 is not an escalation level",
            ),
            (
                "[[severities.rules]]\nalarm = \"x\"\nseverity = \"urgent\"\n",
                "key `severities.rules[0].severity`: `urgent` is not a severity",
            ),
            (
                "[[severities.rules]]\nseverity = \"low\"\n",
                "key `severities.rules[0]`: a rule needs `alarm`",
            ),
            (
                "[severities]\ndefault_level = 0\n",
                "key `severities.default_level`: 0 is not an escalation level",
            ),
        ] {
            let e = load(text).expect_err(text);
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
