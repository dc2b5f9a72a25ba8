//! The daily health check (runbook: routine operations 1, every day at
//! 09:00). The runbook runs four `get-metric-statistics` calls and prints
//! tables; this reads every figure of every configured function, the RDS
//! instance and the cache nodes in one `GetMetricData` call, draws three
//! charts, and says in one line whether anything needs a look.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::{
    Findings, Report, ReportKind, Scope, assemble, avg_max_lines, color, failed_field, footer,
    render_all,
};
use crate::chart::plan::{QuerySet, by_id};
use crate::chart::{Axis, ChartData, SeriesData, Threshold};
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
    let mut findings = Findings::default();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut charts = Vec::new();
    let chart =
        |title: &str, y: &str, series: Vec<SeriesData>, thresholds: Vec<Threshold>| ChartData {
            title: title.into(),
            y_label: y.into(),
            y2_label: String::new(),
            start,
            end: now,
            tz: scope.tz,
            series,
            thresholds,
            width: 1000,
            height: 500,
        };
    match results {
        Err(e) => {
            // Every figure of this report comes from the one call.
            findings.failed("CloudWatch metrics", &e);
            fields.push(failed_field("Metrics (Lambda, RDS, ElastiCache)", &e));
        }
        Ok(r) => {
            let get = |id: &str| r.get(id).cloned().unwrap_or_default();
            // Lambda: duration and throttles.
            let mut lines = Vec::new();
            let mut throttled = Vec::new();
            for (i, (f, avg, max, thr)) in ids.functions.iter().enumerate() {
                let (avg, max) = (get(avg), get(max));
                let throttles: f64 = get(thr).points.iter().map(|p| p.1).sum();
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
                fields.push((format!("λ {f}"), format!("{duration} · {throttle_text}")));
                lines.extend(avg_max_lines(f, i, avg, max));
            }
            if throttled.is_empty() {
                let n = ids.functions.len();
                findings.fine(format!(
                    "no throttles on {n} function{}",
                    if n == 1 { "" } else { "s" }
                ));
            } else {
                for t in throttled {
                    findings.concern(t);
                }
            }
            charts.push((
                chart(
                    "Lambda duration per hour, last 24 h",
                    "ms",
                    lines,
                    Vec::new(),
                ),
                "health-lambda-duration",
            ));

            // RDS CPU.
            let (avg, max) = (get(&ids.rds.0), get(&ids.rds.1));
            let db = &scope.database;
            match max.max() {
                Some(p) => {
                    fields.push((
                        format!("🗄️ RDS {db} CPU"),
                        format!(
                            "avg {} %, peak {} %",
                            number(mean(&avg).unwrap_or(0.0)),
                            number(p)
                        ),
                    ));
                    if p >= RDS_CPU_CONCERN {
                        findings.concern(format!("RDS {db} CPU peaked at {} %", number(p)));
                    } else {
                        findings.fine(format!("RDS CPU peak {} %", number(p)));
                    }
                }
                None => fields.push((format!("🗄️ RDS {db} CPU"), "no datapoints in 24 h".into())),
            }
            let threshold = Threshold {
                label: format!("{RDS_CPU_CONCERN} %"),
                value: RDS_CPU_CONCERN,
                color: (214, 39, 40),
            };
            charts.push((
                chart(
                    &format!("RDS {db} CPU per hour, last 24 h"),
                    "CPU %",
                    vec![
                        SeriesData {
                            label: "average".into(),
                            color: color(0),
                            axis: Axis::Left,
                            points: avg.points,
                        },
                        SeriesData {
                            label: "maximum".into(),
                            color: color(3),
                            axis: Axis::Left,
                            points: max.points,
                        },
                    ],
                    vec![threshold],
                ),
                "health-rds-cpu",
            ));

            // ElastiCache engine CPU, per node.
            let mut lines = Vec::new();
            for (i, (c, avg, max)) in ids.cache.iter().enumerate() {
                let (avg, max) = (get(avg), get(max));
                match max.max() {
                    Some(p) => {
                        fields.push((
                            format!("🔄 ElastiCache {c} engine CPU"),
                            format!(
                                "avg {} %, peak {} %",
                                number(mean(&avg).unwrap_or(0.0)),
                                number(p)
                            ),
                        ));
                        if p >= CACHE_CPU_CONCERN {
                            findings.concern(format!(
                                "cache node {c} engine CPU peaked at {} %",
                                number(p)
                            ));
                        } else {
                            findings.fine(format!("cache engine CPU peak {} % on {c}", number(p)));
                        }
                    }
                    None => fields.push((
                        format!("🔄 ElastiCache {c} engine CPU"),
                        "no datapoints in 24 h".into(),
                    )),
                }
                lines.extend(avg_max_lines(c, i, avg, max));
            }
            charts.push((
                chart(
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
            ));
        }
    }
    let images = render_all(charts, now, &mut findings);
    assemble(
        kind,
        now.with_timezone(&scope.tz)
            .format("%a %d.%m.%Y")
            .to_string(),
        findings,
        fields,
        images,
        footer(
            kind,
            scope,
            now,
            "CloudWatch GetMetricData, 1-hour periods, last 24 h",
        ),
    )
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
