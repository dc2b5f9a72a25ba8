//! The weekly scaling-policy review (runbook: routine operations 2,
//! Mondays at 10:00). The same three reads as the runbook's script
//! (`describe-scalable-targets`, `describe-scaling-activities --max-items
//! 10`, `ce get-cost-and-usage`), but the cost read covers two weeks so the
//! report can say how this week compares with the last, and the findings
//! (failed activities, targets that cannot scale, a rising bill) are
//! computed instead of left to the reader of a table.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::{Draft, Report, ReportKind, Scope, Window, footer};
use crate::chart::{Axis, SeriesData};
use crate::cloud::{Cloud, CloudError, DailyCost, ScalableTarget, ScalingActivity};
use crate::domain::truncate;
use crate::format::{Change, change, usd, when};

/// The Cost Explorer service name the runbook's query filters on.
const LAMBDA_SERVICE: &str = "AWS Lambda";
/// The week's Lambda cost this much above the week before needs a look.
const COST_RISE_CONCERN: f64 = 0.2;
const ACTIVITIES: i32 = 10;
const NOT_DONE: &[&str] = &["Failed", "Unfulfilled"];

pub(super) async fn build(cloud: &dyn Cloud, scope: &Scope, now: DateTime<Utc>) -> Report {
    // Cost Explorer's days are UTC days; today is not finished.
    let end = now.date_naive();
    let (targets, activities, costs) = tokio::join!(
        cloud.scalable_targets("lambda"),
        cloud.scaling_activities("lambda", ACTIVITIES),
        cloud.daily_costs(end - Duration::days(14), end),
    );
    compose(scope, now, end, targets, activities, costs)
}

fn compose(
    scope: &Scope,
    now: DateTime<Utc>,
    end: NaiveDate,
    targets: Result<Vec<ScalableTarget>, CloudError>,
    activities: Result<Vec<ScalingActivity>, CloudError>,
    costs: Result<Vec<DailyCost>, CloudError>,
) -> Report {
    let kind = ReportKind::Weekly;
    let mut d = Draft::default();
    match targets {
        Err(e) => d.failed("scalable targets", "Scalable targets", &e),
        Ok(targets) => scalable_targets(&mut d, &targets),
    }
    match activities {
        Err(e) => d.failed("scaling activities", "Scaling activities", &e),
        Ok(list) => scaling_activities(&mut d, &list, now, scope.tz),
    }
    match costs {
        Err(e) => d.failed("Lambda cost", "Lambda cost", &e),
        Ok(costs) => lambda_cost(&mut d, &costs, end),
    }
    let images = d.render(now);
    d.finish(
        kind,
        format!(
            "week of {}",
            now.with_timezone(&scope.tz).format("%d.%m.%Y")
        ),
        images,
        footer(
            kind,
            scope,
            now,
            "Application Auto Scaling, Cost Explorer BlendedCost (UTC days)",
        ),
    )
}

/// The targets' capacities; a target whose min is its max cannot scale.
fn scalable_targets(d: &mut Draft, targets: &[ScalableTarget]) {
    if targets.is_empty() {
        d.field(
            "🎯 Scalable targets",
            "none registered in the lambda namespace",
        );
        return;
    }
    let lines: Vec<String> = targets
        .iter()
        .map(|t| format!("`{}` min {} · max {}", t.resource_id, t.min, t.max))
        .collect();
    for t in targets.iter().filter(|t| t.min == t.max) {
        d.findings.concern(format!(
            "`{}` has min = max = {}, so it cannot scale",
            t.resource_id, t.min
        ));
    }
    d.field(
        format!("🎯 Scalable targets ({})", targets.len()),
        lines.join("\n"),
    );
}

/// The last activities, one line each; any that did not succeed needs a look.
fn scaling_activities(d: &mut Draft, list: &[ScalingActivity], now: DateTime<Utc>, tz: Tz) {
    if list.is_empty() {
        d.field("📈 Recent scaling activities", "none recorded");
        return;
    }
    let shown = &list[..list.len().min(ACTIVITIES as usize)];
    let not_done = shown
        .iter()
        .filter(|a| NOT_DONE.contains(&a.status.as_str()))
        .count();
    if not_done > 0 {
        d.findings.concern(format!(
            "{not_done} of the last {} scaling activities did not succeed",
            shown.len()
        ));
    } else {
        d.findings.fine(format!(
            "the last {} scaling activities succeeded",
            shown.len()
        ));
    }
    let lines: Vec<String> = shown
        .iter()
        .map(|a| {
            let mark = if NOT_DONE.contains(&a.status.as_str()) {
                "⚠️ "
            } else {
                ""
            };
            format!(
                "{mark}{} *{}* `{}`: {} _({})_",
                when(a.start, now, tz),
                a.status,
                a.resource_id,
                truncate(&a.description, 120),
                truncate(&a.cause, 160)
            )
        })
        .collect();
    d.field(
        format!("📈 Last {} scaling activities", shown.len()),
        lines.join("\n"),
    );
}

/// This week's Lambda cost against the week before, and a chart of its days.
fn lambda_cost(d: &mut Draft, costs: &[DailyCost], end: NaiveDate) {
    let days: Vec<NaiveDate> = (1..=14).rev().map(|k| end - Duration::days(k)).collect();
    let on = |day: NaiveDate| -> f64 {
        costs
            .iter()
            .filter(|c| c.day == day && c.service == LAMBDA_SERVICE)
            .map(|c| c.amount)
            .sum()
    };
    let (before, this): (Vec<NaiveDate>, Vec<NaiveDate>) = (days[..7].to_vec(), days[7..].to_vec());
    let this_week: f64 = this.iter().map(|day| on(*day)).sum();
    let last_week: f64 = before.iter().map(|day| on(*day)).sum();
    let moved = change(this_week, last_week);
    d.field(
        "💰 Lambda cost, last 7 days",
        format!(
            "{} ({} vs. {} the week before)",
            usd(this_week),
            moved.describe(),
            usd(last_week)
        ),
    );
    match moved {
        Change::Ratio(r) if r >= COST_RISE_CONCERN => d.findings.concern(format!(
            "Lambda cost rose {} week on week, to {}",
            moved.describe(),
            usd(this_week)
        )),
        Change::New => d
            .findings
            .concern(format!("new Lambda spend of {} this week", usd(this_week))),
        _ => d.findings.fine(format!(
            "Lambda cost {} ({})",
            usd(this_week),
            moved.describe()
        )),
    }
    let midnight = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc();
    let window = Window {
        start: midnight(this[0]),
        end: midnight(end),
        tz: chrono_tz::UTC,
    };
    let series = vec![SeriesData {
        label: LAMBDA_SERVICE.into(),
        color: super::color(0),
        axis: Axis::Left,
        points: this.iter().map(|day| (midnight(*day), on(*day))).collect(),
    }];
    d.chart(
        window.chart(
            "AWS Lambda cost per day, last 7 days (UTC)",
            "USD per day",
            series,
            Vec::new(),
        ),
        "review-lambda-cost",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Tone;

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

    #[test]
    fn a_failed_part_is_shown_and_the_rest_still_stands() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let end = now.date_naive();
        let costs: Vec<DailyCost> = (1..=14)
            .map(|k| DailyCost {
                day: end - Duration::days(k),
                service: LAMBDA_SERVICE.into(),
                amount: if k <= 7 { 20.0 } else { 10.0 },
                unit: "USD".into(),
            })
            .collect();
        let r = compose(
            &scope(),
            now,
            end,
            Ok(vec![ScalableTarget {
                namespace: "lambda".into(),
                resource_id: "function:persona-api:live".into(),
                dimension: "lambda:function:ProvisionedConcurrency".into(),
                min: 5,
                max: 50,
            }]),
            Err(CloudError::AccessDenied {
                action: "application-autoscaling:DescribeScalingActivities".into(),
            }),
            Ok(costs),
        );
        assert_eq!(r.message.tone, Tone::Warning);
        assert!(
            r.message
                .text
                .plain()
                .contains("Lambda cost rose +100.0 % week on week, to $140.00"),
            "{}",
            r.message.text.plain()
        );
        assert!(
            r.message
                .text
                .plain()
                .contains("scaling activities could not be read"),
            "{}",
            r.message.text.plain()
        );
        let fields: Vec<(&str, &str)> = r
            .message
            .fields
            .iter()
            .map(|f| (f.label.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            fields[0],
            (
                "🎯 Scalable targets (1)",
                "`function:persona-api:live` min 5 · max 50"
            )
        );
        assert_eq!(fields[1].0, "⚠️ Scaling activities");
        assert!(
            fields[1]
                .1
                .starts_with("could not be read: the bot's AWS role is not allowed")
        );
        assert_eq!(
            fields[2],
            (
                "💰 Lambda cost, last 7 days",
                "$140.00 (+100.0 % vs. $70.00 the week before)"
            )
        );
        assert_eq!(r.images.len(), 1);
    }
}
