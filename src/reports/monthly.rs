//! The monthly capacity plan (runbook: routine operations 3, the first
//! Monday of each month). The runbook prints 30 days of invocations as a
//! table, counts successful scaling activities, and then echoes the same
//! three fixed recommendations every month. This fits a trend to the daily
//! invocations and derives each recommendation from a figure it names:
//! peak concurrency near a target's maximum capacity, provisioned
//! concurrency that sits mostly idle, throttling, failed scaling, and a
//! forecast of next month's peak from the trend.
//!
//! One `GetMetricData` call for every function's figures, plus
//! `DescribeScalableTargets` (the maximum capacities) and
//! `DescribeScalingActivities` (the last 50), concurrently.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::{Draft, Findings, Report, ReportKind, Scope, Window, color, footer, series_of, trend};
use crate::chart::plan::{QuerySet, by_id};
use crate::chart::{Axis, SeriesData};
use crate::cloud::{Cloud, CloudError, ScalableTarget, ScalingActivity, Series};
use crate::format::{number, percent};

const DAY: u32 = 86_400;
const DAYS: i64 = 30;
const ACTIVITIES: i32 = 50;
/// Peak concurrency at this share of a target's maximum is near it.
const NEAR_MAX: f64 = 0.8;
/// Provisioned concurrency used less than this on average is mostly idle.
const LOW_UTILIZATION: f64 = 0.3;
/// Fewer successful scaling activities than this share needs a look.
const SUCCESS_CONCERN: f64 = 0.9;

struct FunctionIds {
    name: String,
    invocations: String,
    concurrency: String,
    throttles: String,
    utilization: String,
}

pub(super) async fn build(cloud: &dyn Cloud, scope: &Scope, now: DateTime<Utc>) -> Report {
    let start = (now - Duration::days(DAYS))
        .duration_trunc(Duration::days(1))
        .unwrap_or(now - Duration::days(DAYS));
    let mut q = QuerySet::default();
    let ids: Vec<FunctionIds> = scope
        .functions
        .iter()
        .map(|f| {
            let d = vec![("FunctionName".to_owned(), f.clone())];
            let alias = vec![
                ("FunctionName".to_owned(), f.clone()),
                ("Resource".to_owned(), format!("{f}:{}", scope.alias)),
            ];
            FunctionIds {
                name: f.clone(),
                invocations: q.add("AWS/Lambda", "Invocations", d.clone(), "Sum", DAY),
                concurrency: q.add(
                    "AWS/Lambda",
                    "ConcurrentExecutions",
                    d.clone(),
                    "Maximum",
                    DAY,
                ),
                throttles: q.add("AWS/Lambda", "Throttles", d, "Sum", DAY),
                utilization: q.add(
                    "AWS/Lambda",
                    "ProvisionedConcurrencyUtilization",
                    alias,
                    "Average",
                    DAY,
                ),
            }
        })
        .collect();
    let request = q.into_request(start, now);
    let (metrics, targets, activities) = tokio::join!(
        cloud.metric_data(&request),
        cloud.scalable_targets("lambda"),
        cloud.scaling_activities("lambda", ACTIVITIES),
    );
    compose(
        scope,
        now,
        start,
        &ids,
        metrics.map(by_id),
        targets,
        activities,
    )
}

/// The daily totals across functions, by day, and their trend.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Growth {
    /// Relative change over 30 days along the trend line.
    per_month: f64,
    /// The busiest day's total.
    peak: f64,
    /// The busiest day expected next month if the trend holds.
    forecast_peak: f64,
}

fn growth(daily: &[(DateTime<Utc>, f64)]) -> Option<Growth> {
    let first = daily.first()?.0;
    let pts: Vec<(f64, f64)> = daily
        .iter()
        .map(|(t, v)| ((*t - first).num_hours() as f64 / 24.0, *v))
        .collect();
    let (_, slope) = trend(&pts)?;
    let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    if mean <= 0.0 {
        return None;
    }
    let per_month = slope * DAYS as f64 / mean;
    let peak = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    Some(Growth {
        per_month,
        peak,
        forecast_peak: (peak * (1.0 + per_month)).max(0.0),
    })
}

fn target_of<'a>(targets: &'a [ScalableTarget], function: &str) -> Option<&'a ScalableTarget> {
    let prefix = format!("function:{function}:");
    targets.iter().find(|t| t.resource_id.starts_with(&prefix))
}

fn compose(
    scope: &Scope,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    ids: &[FunctionIds],
    metrics: Result<HashMap<String, Series>, CloudError>,
    targets: Result<Vec<ScalableTarget>, CloudError>,
    activities: Result<Vec<ScalingActivity>, CloudError>,
) -> Report {
    let kind = ReportKind::Monthly;
    let mut d = Draft::default();
    // The forecast as a planning figure, whatever else is recommended.
    let mut plan = None;
    let targets = match targets {
        Ok(t) => Some(t),
        Err(e) => {
            d.failed("scalable targets", "Scalable targets", &e);
            None
        }
    };
    match &metrics {
        Err(e) => d.failed("CloudWatch metrics", "Traffic (CloudWatch metrics)", e),
        Ok(r) => {
            let window = Window {
                start,
                end: now,
                tz: scope.tz,
            };
            let g = invocations(&mut d, r, ids, &window);
            plan = g.map(plan_for);
            let growth_rate = g.map(|g| g.per_month).unwrap_or(0.0);
            for f in ids {
                let target = targets.as_deref().and_then(|t| target_of(t, &f.name));
                function(&mut d, r, f, target, growth_rate);
            }
        }
    }
    match activities {
        Err(e) => d.failed("scaling activities", "Scaling efficiency", &e),
        Ok(list) => scaling_efficiency(&mut d, &list),
    }
    let images = d.render(now);
    recommendations(&mut d, plan);
    d.finish(
        kind,
        now.with_timezone(&scope.tz).format("%B %Y").to_string(),
        images,
        footer(
            kind,
            scope,
            now,
            "CloudWatch GetMetricData (1-day periods, 30 days), Application Auto Scaling",
        ),
    )
}

/// Invocations per day: the fields with the total and the forecast, and a
/// chart of every function's days with the total and its trend line. The
/// growth, when there are days enough for a trend.
fn invocations(
    d: &mut Draft,
    r: &HashMap<String, Series>,
    ids: &[FunctionIds],
    window: &Window,
) -> Option<Growth> {
    let day = |t: DateTime<Utc>| t.duration_trunc(Duration::days(1)).unwrap_or(t);
    let mut totals: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    let mut lines = Vec::new();
    for (i, f) in ids.iter().enumerate() {
        let inv = series_of(r, &f.invocations);
        for (t, v) in &inv.points {
            *totals.entry(day(*t)).or_default() += v;
        }
        lines.push(SeriesData {
            label: f.name.clone(),
            color: color(i),
            axis: Axis::Left,
            points: inv.points,
        });
    }
    let daily: Vec<(DateTime<Utc>, f64)> = totals.into_iter().collect();
    let g = growth(&daily);
    match g {
        Some(g) => growth_fields(d, &daily, g),
        None => d.field(
            "📈 Invocations, last 30 days",
            "too few days with invocations for a trend",
        ),
    }
    if let Some(g) = g {
        lines.extend(trend_lines(&daily, g));
    }
    d.chart(
        window.chart(
            "Lambda invocations per day, last 30 days",
            "invocations per day",
            lines,
            Vec::new(),
        ),
        "capacity-invocations",
    );
    g
}

fn growth_fields(d: &mut Draft, daily: &[(DateTime<Utc>, f64)], g: Growth) {
    let sum: f64 = daily.iter().map(|p| p.1).sum();
    d.field(
        "📈 Invocations, last 30 days",
        format!(
            "{} in all, {} on the busiest day; trend {:+.1} % per 30 days",
            number(sum),
            number(g.peak),
            g.per_month * 100.0
        ),
    );
    d.field(
        "🔮 Forecast",
        format!(
            "next month's busiest day ≈ {} invocations (this month's {} × (1 {:+.1} %))",
            number(g.forecast_peak),
            number(g.peak),
            g.per_month * 100.0
        ),
    );
}

/// The planning figure for next month, from the trend.
fn plan_for(g: Growth) -> String {
    format!(
        "plan for a busiest day of about {} invocations next month: this month's peak {} on the trend of {:+.1} % per 30 days",
        number(g.forecast_peak),
        number(g.peak),
        g.per_month * 100.0
    )
}

/// The total drawn with its trend over it, so the growth rate is visible.
fn trend_lines(daily: &[(DateTime<Utc>, f64)], g: Growth) -> Vec<SeriesData> {
    let Some(first) = daily.first() else {
        return Vec::new();
    };
    let pts: Vec<(f64, f64)> = daily
        .iter()
        .map(|(t, v)| ((*t - first.0).num_hours() as f64 / 24.0, *v))
        .collect();
    let Some((a, b)) = trend(&pts) else {
        return Vec::new();
    };
    vec![
        SeriesData {
            label: "all functions".into(),
            color: (60, 60, 60),
            axis: Axis::Left,
            points: daily.to_vec(),
        },
        SeriesData {
            label: format!("trend ({:+.1} % / 30 days)", g.per_month * 100.0),
            color: (150, 150, 150),
            axis: Axis::Left,
            points: daily
                .iter()
                .zip(&pts)
                .map(|((t, _), (x, _))| (*t, a + b * x))
                .collect(),
        },
    ]
}

/// One function: peak concurrency against its target's max capacity,
/// provisioned utilization and throttles, as a field and as concerns.
fn function(
    d: &mut Draft,
    r: &HashMap<String, Series>,
    f: &FunctionIds,
    target: Option<&ScalableTarget>,
    growth_rate: f64,
) {
    let peak = series_of(r, &f.concurrency).max();
    let throttles: f64 = series_of(r, &f.throttles).points.iter().map(|p| p.1).sum();
    let util = series_of(r, &f.utilization);
    let util_avg = (!util.points.is_empty())
        .then(|| util.points.iter().map(|p| p.1).sum::<f64>() / util.points.len() as f64);
    // "Persistently": even the busiest day's average was low.
    let util_high = util.max();
    let mut facts = Vec::new();
    if let Some(p) = peak {
        facts.push(format!("peak concurrency {}", number(p)));
    }
    if let Some(t) = target {
        facts.push(format!("max capacity {}", t.max));
    }
    if let Some(u) = util_avg {
        facts.push(format!("provisioned utilization avg {}", percent(u)));
    }
    facts.push(format!("{} throttles", number(throttles)));
    d.field(format!("λ {}", f.name), facts.join(" · "));

    if let (Some(p), Some(t)) = (peak, target)
        && t.max > 0
    {
        max_capacity_concern(&mut d.findings, p, t, growth_rate);
    }
    if let (Some(u), Some(high)) = (util_avg, util_high)
        && high < LOW_UTILIZATION
    {
        let what = target
            .map(|t| format!("lower min capacity of `{}` (now {})", t.resource_id, t.min))
            .unwrap_or_else(|| format!("lower provisioned concurrency of {}", f.name));
        d.findings.concern(format!(
            "{what}: provisioned concurrency utilization averaged {} over 30 days and stayed below {} every day (highest day {})",
            percent(u),
            percent(LOW_UTILIZATION),
            percent(high)
        ));
    }
    if throttles > 0.0 {
        d.findings.concern(format!(
            "{} throttled {} times in 30 days: raise its reserved concurrency or max capacity",
            f.name,
            number(throttles)
        ));
    }
}

/// Peak concurrency near the target's max capacity now, or above it next
/// month at the current growth.
fn max_capacity_concern(findings: &mut Findings, peak: f64, t: &ScalableTarget, growth_rate: f64) {
    let max = f64::from(t.max);
    let forecast = peak * (1.0 + growth_rate);
    if peak >= NEAR_MAX * max {
        findings.concern(format!(
            "raise max capacity of `{}`: peak concurrency {} is {} of its max {}",
            t.resource_id,
            number(peak),
            percent(peak / max),
            t.max
        ));
    } else if forecast > max {
        findings.concern(format!(
            "raise max capacity of `{}` before next month: at {:+.1} % growth its peak concurrency {} becomes about {}, above its max {}",
            t.resource_id,
            growth_rate * 100.0,
            number(peak),
            number(forecast),
            t.max
        ));
    }
}

/// The share of recent scaling activities that succeeded.
fn scaling_efficiency(d: &mut Draft, list: &[ScalingActivity]) {
    let n = list.len();
    let ok = list.iter().filter(|a| a.status == "Successful").count();
    d.field(
        "⚡ Scaling efficiency",
        if n == 0 {
            "no scaling activities recorded".into()
        } else {
            format!(
                "{ok} of the last {n} scaling activities successful ({})",
                percent(ok as f64 / n as f64)
            )
        },
    );
    if n > 0 && (ok as f64) < SUCCESS_CONCERN * n as f64 {
        d.findings.concern(format!(
            "only {ok} of the last {n} scaling activities succeeded: `/scale activities` shows the failures"
        ));
    }
}

/// The last field: each concern as a recommendation, and the plan.
fn recommendations(d: &mut Draft, plan: Option<String>) {
    let mut lines: Vec<String> = if d.findings.concerns.is_empty() {
        vec!["No capacity changes needed: no function near its max capacity, no idle provisioned concurrency, no throttling, scaling succeeds.".to_owned()]
    } else {
        d.findings
            .concerns
            .iter()
            .map(|c| format!("• {c}"))
            .collect()
    };
    lines.extend(plan.map(|p| format!("• {p}")));
    d.field("💡 Recommendations", lines.join("\n"));
    if d.findings.concerns.is_empty() && d.findings.failed.is_empty() {
        d.findings.fine("capacity fits the last 30 days");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(day: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
            + Duration::days(day)
    }

    #[test]
    fn growth_and_forecast_follow_the_trend() {
        // 1000 a day rising by 10 a day: mean 1145, slope 10/day.
        let daily: Vec<_> = (0..30).map(|d| (t(d), 1000.0 + 10.0 * d as f64)).collect();
        let g = growth(&daily).unwrap_or(Growth {
            per_month: 0.0,
            peak: 0.0,
            forecast_peak: 0.0,
        });
        assert!((g.per_month - 300.0 / 1145.0).abs() < 1e-9, "{g:?}");
        assert_eq!(g.peak, 1290.0);
        assert!((g.forecast_peak - 1290.0 * (1.0 + 300.0 / 1145.0)).abs() < 1e-6);
        assert_eq!(growth(&daily[..1]), None);
    }

    #[test]
    fn recommendations_name_their_figures() {
        let scope = Scope {
            functions: vec!["persona-api".into()],
            database: "db".into(),
            cache_clusters: vec![],
            alias: "live".into(),
            region: "eu-central-1".into(),
            tz: chrono_tz::Europe::Berlin,
        };
        let ids = vec![FunctionIds {
            name: "persona-api".into(),
            invocations: "i".into(),
            concurrency: "c".into(),
            throttles: "t".into(),
            utilization: "u".into(),
        }];
        let series = |id: &str, v: Vec<f64>| {
            (
                id.to_owned(),
                Series {
                    id: id.into(),
                    points: v
                        .into_iter()
                        .enumerate()
                        .map(|(d, v)| (t(d as i64), v))
                        .collect(),
                },
            )
        };
        let metrics: HashMap<String, Series> = [
            series("i", (0..30).map(|d| 1000.0 + 10.0 * f64::from(d)).collect()),
            series("c", vec![10.0, 45.0, 20.0]),
            series("t", vec![0.0, 12.0]),
            series("u", vec![0.1, 0.2]),
        ]
        .into_iter()
        .collect();
        let targets = vec![ScalableTarget {
            namespace: "lambda".into(),
            resource_id: "function:persona-api:live".into(),
            dimension: "lambda:function:ProvisionedConcurrency".into(),
            min: 20,
            max: 50,
        }];
        let activity = |status: &str| ScalingActivity {
            id: "a".into(),
            resource_id: "function:persona-api:live".into(),
            description: String::new(),
            cause: String::new(),
            status: status.into(),
            start: t(3),
        };
        let r = compose(
            &scope,
            t(30),
            t(0),
            &ids,
            Ok(metrics),
            Ok(targets),
            Ok(vec![activity("Successful"), activity("Failed")]),
        );
        let recs = &r
            .message
            .fields
            .last()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        assert!(recs.contains("raise max capacity of `function:persona-api:live`: peak concurrency 45 is 90.0 % of its max 50"), "{recs}");
        assert!(recs.contains("lower min capacity of `function:persona-api:live` (now 20): provisioned concurrency utilization averaged 15.0 % over 30 days and stayed below 30.0 % every day (highest day 20.0 %)"), "{recs}");
        assert!(
            recs.contains("persona-api throttled 12 times in 30 days"),
            "{recs}"
        );
        assert!(
            recs.contains("only 1 of the last 2 scaling activities succeeded"),
            "{recs}"
        );
        assert!(
            r.message.text.plain().starts_with("⚠️ *Needs a look*"),
            "{}",
            r.message.text.plain()
        );
        assert!(recs.contains("• plan for a busiest day of about 1,628 invocations next month: this month's peak 1,290 on the trend of +26.2 % per 30 days"), "{recs}");
        assert_eq!(r.images.len(), 1);
        assert!(
            r.message
                .fields
                .iter()
                .any(|f| f.label == "🔮 Forecast" && f.value.contains("+26.2 %"))
        );
    }
}
