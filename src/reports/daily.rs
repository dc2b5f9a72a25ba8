//! The daily health check (runbook: routine operations 1, every day at
//! 09:00). The runbook runs four `get-metric-statistics` calls and prints
//! tables; this reads every figure of every configured function, the RDS
//! instance and the cache nodes in one `GetMetricData` call, draws three
//! charts, and says in one line whether anything needs a look.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::{Draft, Report, ReportKind, Scope, Window, avg_max_lines, color, footer, series_of};
use crate::chart::plan::{QuerySet, by_id};
use crate::chart::{Axis, SeriesData, Threshold};
use crate::cloud::{Cloud, Series};
use crate::format::number;

/// CPU above this (percent) on the database at its hourly peak needs a look.
const RDS_CPU_CONCERN: f64 = 80.0;
/// Engine CPU above this (percent) on a cache node: AWS's suggested alarm level.
const CACHE_CPU_CONCERN: f64 = 90.0;
const HOUR: u32 = 3600;

struct Ids {
    functions: Vec<(String, String, String, String)>,
    rds: (String, String),
    cache: Vec<(String, String, String)>,
}

pub(super) async fn build(cloud: &dyn Cloud, scope: &Scope, now: DateTime<Utc>) -> Report {
    let start = (now - Duration::hours(24))
        .duration_trunc(Duration::hours(1))
        .unwrap_or(now - Duration::hours(24));
    let mut q = QuerySet::default();
    let lambda = |f: &str| vec![("FunctionName".to_owned(), f.to_owned())];
    let ids = Ids {
        functions: scope
            .functions
            .iter()
            .map(|f| {
                (
                    f.clone(),
                    q.add("AWS/Lambda", "Duration", lambda(f), "Average", HOUR),
                    q.add("AWS/Lambda", "Duration", lambda(f), "Maximum", HOUR),
                    q.add("AWS/Lambda", "Throttles", lambda(f), "Sum", HOUR),
                )
            })
            .collect(),
        rds: {
            let d = vec![("DBInstanceIdentifier".to_owned(), scope.database.clone())];
            (
                q.add("AWS/RDS", "CPUUtilization", d.clone(), "Average", HOUR),
                q.add("AWS/RDS", "CPUUtilization", d, "Maximum", HOUR),
            )
        },
        cache: scope
            .cache_clusters
            .iter()
            .map(|c| {
                let d = vec![("CacheClusterId".to_owned(), c.clone())];
                (
                    c.clone(),
                    q.add(
                        "AWS/ElastiCache",
                        "EngineCPUUtilization",
                        d.clone(),
                        "Average",
                        HOUR,
                    ),
                    q.add(
                        "AWS/ElastiCache",
                        "EngineCPUUtilization",
                        d,
                        "Maximum",
                        HOUR,
                    ),
                )
            })
            .collect(),
    };
    // One GetMetricData call for the whole report.
    let results = cloud
        .metric_data(&q.into_request(start, now))
        .await
        .map(by_id);
    compose(scope, now, start, &ids, results)
}

fn compose(
    scope: &Scope,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    ids: &Ids,
    results: Result<HashMap<String, Series>, crate::cloud::CloudError>,
) -> Report {
    let kind = ReportKind::Daily;
    let mut d = Draft::default();
    let window = Window {
        start,
        end: now,
        tz: scope.tz,
    };
    match results {
        // Every figure of this report comes from the one call.
        Err(e) => d.failed(
            "CloudWatch metrics",
            "Metrics (Lambda, RDS, ElastiCache)",
            &e,
        ),
        Ok(r) => {
            lambda(&mut d, &r, &ids.functions, &window);
            rds(&mut d, &r, &ids.rds, &scope.database, &window);
            cache(&mut d, &r, &ids.cache, &window);
        }
    }
    let images = d.render(now);
    d.finish(
        kind,
        now.with_timezone(&scope.tz)
            .format("%a %d.%m.%Y")
            .to_string(),
        images,
        footer(
            kind,
            scope,
            now,
            "CloudWatch GetMetricData, 1-hour periods, last 24 h",
        ),
    )
}

/// Lambda: duration and throttles per function, and a chart of the durations.
fn lambda(
    d: &mut Draft,
    r: &HashMap<String, Series>,
    functions: &[(String, String, String, String)],
    window: &Window,
) {
    let mut lines = Vec::new();
    let mut throttled = Vec::new();
    for (i, (f, avg, max, thr)) in functions.iter().enumerate() {
        let (avg, max) = (series_of(r, avg), series_of(r, max));
        let throttles: f64 = series_of(r, thr).points.iter().map(|p| p.1).sum();
        let mean = mean(&avg);
        let peak = max.max();
        let duration = match (mean, peak) {
            (Some(m), Some(p)) => format!("avg {} ms, max {} ms", number(m), number(p)),
            _ => "no invocations in 24 h".into(),
        };
        let throttle_text = if throttles > 0.0 {
            throttled.push(format!("{f} throttled {} times", number(throttles)));
            format!("⚠️ {} throttles", number(throttles))
        } else {
            "0 throttles".into()
        };
        d.field(format!("λ {f}"), format!("{duration} · {throttle_text}"));
        lines.extend(avg_max_lines(f, i, avg, max));
    }
    if throttled.is_empty() {
        let n = functions.len();
        d.findings.fine(format!(
            "no throttles on {n} function{}",
            if n == 1 { "" } else { "s" }
        ));
    } else {
        for t in throttled {
            d.findings.concern(t);
        }
    }
    d.chart(
        window.chart(
            "Lambda duration per hour, last 24 h",
            "ms",
            lines,
            Vec::new(),
        ),
        "health-lambda-duration",
    );
}

/// The database's CPU: average and peak, and their chart.
fn rds(
    d: &mut Draft,
    r: &HashMap<String, Series>,
    (avg, max): &(String, String),
    db: &str,
    window: &Window,
) {
    let (avg, max) = (series_of(r, avg), series_of(r, max));
    match max.max() {
        Some(p) => {
            d.field(
                format!("🗄️ RDS {db} CPU"),
                format!(
                    "avg {} %, peak {} %",
                    number(mean(&avg).unwrap_or(0.0)),
                    number(p)
                ),
            );
            if p >= RDS_CPU_CONCERN {
                d.findings
                    .concern(format!("RDS {db} CPU peaked at {} %", number(p)));
            } else {
                d.findings.fine(format!("RDS CPU peak {} %", number(p)));
            }
        }
        None => d.field(format!("🗄️ RDS {db} CPU"), "no datapoints in 24 h"),
    }
    let threshold = Threshold {
        label: format!("{RDS_CPU_CONCERN} %"),
        value: RDS_CPU_CONCERN,
        color: (214, 39, 40),
    };
    let line = |label: &str, c, points| SeriesData {
        label: label.into(),
        color: c,
        axis: Axis::Left,
        points,
    };
    d.chart(
        window.chart(
            format!("RDS {db} CPU per hour, last 24 h"),
            "CPU %",
            vec![
                line("average", color(0), avg.points),
                line("maximum", color(3), max.points),
            ],
            vec![threshold],
        ),
        "health-rds-cpu",
    );
}

/// ElastiCache engine CPU per node, and one chart of all nodes.
fn cache(
    d: &mut Draft,
    r: &HashMap<String, Series>,
    nodes: &[(String, String, String)],
    window: &Window,
) {
    let mut lines = Vec::new();
    for (i, (c, avg, max)) in nodes.iter().enumerate() {
        let (avg, max) = (series_of(r, avg), series_of(r, max));
        let label = format!("🔄 ElastiCache {c} engine CPU");
        match max.max() {
            Some(p) => {
                d.field(
                    label,
                    format!(
                        "avg {} %, peak {} %",
                        number(mean(&avg).unwrap_or(0.0)),
                        number(p)
                    ),
                );
                if p >= CACHE_CPU_CONCERN {
                    d.findings.concern(format!(
                        "cache node {c} engine CPU peaked at {} %",
                        number(p)
                    ));
                } else {
                    d.findings
                        .fine(format!("cache engine CPU peak {} % on {c}", number(p)));
                }
            }
            None => d.field(label, "no datapoints in 24 h"),
        }
        lines.extend(avg_max_lines(c, i, avg, max));
    }
    d.chart(
        window.chart(
            "ElastiCache engine CPU per hour, last 24 h",
            "CPU %",
            lines,
            vec![Threshold {
                label: format!("{CACHE_CPU_CONCERN} %"),
                value: CACHE_CPU_CONCERN,
                color: (214, 39, 40),
            }],
        ),
        "health-cache-cpu",
    );
}

fn mean(s: &Series) -> Option<f64> {
    (!s.points.is_empty())
        .then(|| s.points.iter().map(|p| p.1).sum::<f64>() / s.points.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Tone;
    use crate::cloud::CloudError;

    fn scope() -> Scope {
        Scope {
            functions: vec!["persona-api".into()],
            database: "matbakh-db".into(),
            cache_clusters: vec!["matbakh-redis-001".into()],
            alias: "live".into(),
            region: "eu-central-1".into(),
            tz: chrono_tz::Europe::Berlin,
        }
    }

    fn ids() -> Ids {
        Ids {
            functions: vec![("persona-api".into(), "da".into(), "dm".into(), "th".into())],
            rds: ("ra".into(), "rm".into()),
            cache: vec![("matbakh-redis-001".into(), "ca".into(), "cm".into())],
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T08:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn series(id: &str, values: &[f64]) -> (String, Series) {
        let points = values
            .iter()
            .enumerate()
            .map(|(h, v)| (now() - Duration::hours(24 - h as i64), *v))
            .collect();
        (
            id.to_owned(),
            Series {
                id: id.into(),
                points,
            },
        )
    }

    #[test]
    fn quiet_figures_are_all_good_with_the_peaks_named() {
        let results: HashMap<String, Series> = [
            series("da", &[100.0, 200.0]),
            series("dm", &[400.0, 650.0]),
            series("th", &[0.0, 0.0]),
            series("ra", &[30.0, 40.0]),
            series("rm", &[50.0, 61.0]),
            series("ca", &[10.0]),
            series("cm", &[12.0]),
        ]
        .into_iter()
        .collect();
        let r = compose(
            &scope(),
            now(),
            now() - Duration::hours(24),
            &ids(),
            Ok(results),
        );
        assert_eq!(r.message.tone, Tone::Good);
        assert!(
            r.message.text.plain().starts_with(
                "✅ *All good*: no throttles on 1 function; RDS CPU peak 61 %; cache engine CPU peak 12 % on matbakh-redis-001."
            ),
            "{}",
            r.message.text.plain()
        );
        assert_eq!(
            r.message.fields[0].value,
            "avg 150 ms, max 650 ms · 0 throttles"
        );
        assert_eq!(r.images.len(), 3);
        assert_eq!(
            r.message.title.as_deref(),
            Some("Daily health check · Fri 27.11.2026")
        );
    }

    #[test]
    fn a_metric_call_that_fails_is_the_reports_one_error() {
        let e = CloudError::AccessDenied {
            action: "cloudwatch:GetMetricData".into(),
        };
        let r = compose(&scope(), now(), now() - Duration::hours(24), &ids(), Err(e));
        assert_eq!(r.message.tone, Tone::Warning);
        assert!(
            r.message
                .text
                .plain()
                .starts_with("⚠️ *Needs a look*: CloudWatch metrics could not be read"),
            "{}",
            r.message.text.plain()
        );
        assert_eq!(r.message.fields.len(), 1);
        assert!(r.images.is_empty());
    }
}
