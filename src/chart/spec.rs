//! Chart definitions: which metrics, over which window, with which lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::{Problem, toml_files, toml_problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    #[default]
    Left,
    Right,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    pub label: String,
    pub namespace: String,
    pub metric: String,
    /// A CloudWatch statistic: Sum, Average, Maximum, Minimum, SampleCount, or pNN.
    pub stat: String,
    /// Dimension values may use `{variable}` placeholders such as `{function}`.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// `#rrggbb`.
    pub color: String,
    #[serde(default)]
    pub axis: Axis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub label: String,
    /// A fixed value…
    pub value: Option<f64>,
    /// …or a value the command supplies (e.g. `reserved_concurrency`); the
    /// line is left out when the command has none.
    pub variable: Option<String>,
    #[serde(default = "grey")]
    pub color: String,
}

fn grey() -> String {
    "#555555".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// May use `{variable}` placeholders.
    pub title: String,
    #[serde(default)]
    pub y_label: String,
    #[serde(default)]
    pub y2_label: String,
    pub window_minutes: u32,
    pub period_seconds: u32,
    pub series: Vec<SeriesSpec>,
    #[serde(default)]
    pub thresholds: Vec<ThresholdSpec>,
    #[serde(skip)]
    pub name: String,
}

/// Parses `#rrggbb`.
pub fn parse_color(s: &str) -> Option<(u8, u8, u8)> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(((v >> 16) as u8, (v >> 8) as u8, v as u8))
}

/// Replaces `{name}` with `vars[name]`; unknown placeholders stay as typed.
pub fn fill(template: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

const STATS: &[&str] = &["Sum", "Average", "Maximum", "Minimum", "SampleCount"];

fn valid_stat(s: &str) -> bool {
    STATS.contains(&s)
        || s.strip_prefix('p')
            .and_then(|n| n.parse::<f64>().ok())
            .is_some_and(|n| (0.0..=100.0).contains(&n))
}

impl ChartSpec {
    fn check(&self, file: &Path) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut p = |key: String, message: String| {
            problems.push(Problem {
                file: file.to_owned(),
                key,
                message,
            })
        };
        if self.series.is_empty() {
            p("series".into(), "a chart needs at least one series".into());
        }
        // GetMetricData returns at most 100,800 points per series; a chart
        // far below that stays readable and fast.
        if self.period_seconds == 0
            || (self.period_seconds < 60 && !self.period_seconds.is_multiple_of(10))
            || (self.period_seconds >= 60 && !self.period_seconds.is_multiple_of(60))
        {
            p(
                "period_seconds".into(),
                "must be 1, 5, 10, 30 or a multiple of 60".into(),
            );
        } else if self.window_minutes == 0
            || u64::from(self.window_minutes) * 60 / u64::from(self.period_seconds) > 5000
        {
            p(
                "window_minutes".into(),
                "the window must hold 1 to 5000 periods".into(),
            );
        }
        for (i, s) in self.series.iter().enumerate() {
            if parse_color(&s.color).is_none() {
                p(
                    format!("series[{i}].color"),
                    format!("`{}` is not #rrggbb", s.color),
                );
            }
            if !valid_stat(&s.stat) {
                p(
                    format!("series[{i}].stat"),
                    format!(
                        "`{}` is not a CloudWatch statistic ({} or pNN)",
                        s.stat,
                        STATS.join(", ")
                    ),
                );
            }
            if s.namespace.is_empty() || s.metric.is_empty() {
                p(
                    format!("series[{i}]"),
                    "namespace and metric must be set".into(),
                );
            }
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            if t.value.is_some() == t.variable.is_some() {
                p(
                    format!("thresholds[{i}]"),
                    "set exactly one of `value` and `variable`".into(),
                );
            }
            if parse_color(&t.color).is_none() {
                p(
                    format!("thresholds[{i}].color"),
                    format!("`{}` is not #rrggbb", t.color),
                );
            }
        }
        problems
    }
}

/// All charts in `charts/`, by file stem.
#[derive(Debug, Clone, Default)]
pub struct ChartCatalog {
    charts: BTreeMap<String, ChartSpec>,
}

impl ChartCatalog {
    pub fn load(dir: &Path) -> Result<Self, Vec<Problem>> {
        let files = toml_files(dir).map_err(|p| vec![p])?;
        let mut charts = BTreeMap::new();
        let mut problems = Vec::new();
        for file in files {
            match load_one(&file) {
                Ok(spec) => {
                    charts.insert(spec.name.clone(), spec);
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        if problems.is_empty() {
            Ok(Self { charts })
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, name: &str) -> Option<&ChartSpec> {
        self.charts.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.charts.keys().cloned().collect()
    }
}

fn load_one(file: &PathBuf) -> Result<ChartSpec, Vec<Problem>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![Problem {
            file: file.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    let mut spec: ChartSpec = toml::from_str(&text).map_err(|e| vec![toml_problem(file, &e)])?;
    spec.name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let problems = spec.check(file);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_and_templates() {
        assert_eq!(parse_color("#d62728"), Some((0xd6, 0x27, 0x28)));
        assert_eq!(parse_color("d62728"), None);
        assert_eq!(parse_color("#zzzzzz"), None);
        let vars = BTreeMap::from([("function".to_string(), "persona-api".to_string())]);
        assert_eq!(
            fill("{function}: throttles", &vars),
            "persona-api: throttles"
        );
    }

    #[test]
    fn stats() {
        assert!(valid_stat("Sum"));
        assert!(valid_stat("p99"));
        assert!(valid_stat("p99.9"));
        assert!(!valid_stat("sum"));
        assert!(!valid_stat("p101"));
    }
}
