//! `/scale activities [n]`.
//!
//! Replaces the runbook's troubleshooting diagnosis for *Scaling too
//! aggressive or too slow* (`describe-scaling-activities --max-items 20`,
//! printed as a table of start time, description, status and cause). The
//! table leaves the judging to the reader; this counts the activities by
//! status, calls out failed ones, and finds resources that scale so often
//! in the last hour that longer cooldowns are the runbook's answer
//! (solution 2). Times are in the display time zone, not UTC epoch.
//!
//! One `DescribeScalingActivities` call: a page of 50, so that the
//! last-hour count does not depend on how many activities are shown.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::catalog::Invocation;
use crate::chat::{Message, Tone};
use crate::cloud::ScalingActivity;
use crate::domain::truncate;
use crate::engine::request::{ActionError, Outcome, Reply};

use super::ActionContext;
use crate::format::{stamp, when};

/// One page of `DescribeScalingActivities`: the sample the frequency
/// finding is computed on.
const SAMPLE: usize = 50;

/// Statuses of activities that did not do what they set out to do.
const NOT_DONE: &[&str] = &["Failed", "Unfulfilled"];

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let shown = usize::try_from(inv.integer("n").unwrap_or(10).clamp(1, 50)).unwrap_or(10);
    let namespace = inv
        .spec
        .params
        .get("namespace")
        .and_then(toml::Value::as_str)
        .unwrap_or("lambda");
    let limit = Limits {
        shown,
        per_hour: usize::try_from(inv.spec.param_i64("frequent_per_hour", 6).max(1)).unwrap_or(6),
    };
    let activities = cx
        .cloud
        .scaling_activities(namespace, SAMPLE.max(shown) as i32)
        .await?;
    let now = cx.clock.now();
    let mut message = report(namespace, &activities, limit, now, cx.tz);
    message.footer = Some(format!(
        "Application Auto Scaling · {} · {} · runbook: troubleshooting, scaling too aggressive or too slow",
        cx.region,
        stamp(now, cx.tz)
    ).into());
    Ok(Outcome::Reply(Reply {
        message,
        images: Vec::new(),
    }))
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Activities listed one by one.
    shown: usize,
    /// More than this many in the last hour on one resource is frequent.
    per_hour: usize,
}

/// Resources with more than `per_hour` activities in the hour before
/// `now`, most active first.
fn frequent(
    activities: &[ScalingActivity],
    now: DateTime<Utc>,
    per_hour: usize,
) -> Vec<(String, usize)> {
    let since = now - Duration::hours(1);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in activities.iter().filter(|a| a.start >= since) {
        *counts.entry(a.resource_id.as_str()).or_default() += 1;
    }
    let mut busy: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(_, n)| *n > per_hour)
        .map(|(r, n)| (r.to_owned(), n))
        .collect();
    busy.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    busy
}

/// What stands out: resources scaling too often, activities that did not
/// finish; the tone follows the worst.
fn findings(
    activities: &[ScalingActivity],
    shown: &[ScalingActivity],
    limit: Limits,
    now: DateTime<Utc>,
    tz: Tz,
) -> (Tone, Vec<String>) {
    let mut findings = Vec::new();
    let sample_full = activities.len() >= SAMPLE;
    let oldest_in_hour = activities
        .last()
        .is_some_and(|a| a.start >= now - Duration::hours(1));
    for (resource, n) in frequent(activities, now, limit.per_hour) {
        let at_least = if sample_full && oldest_in_hour {
            "at least "
        } else {
            ""
        };
        findings.push(format!(
            "`{resource}` scaled {at_least}{n} times in the last hour: scaling frequently, consider longer \
             cooldowns (runbook solution 2: modify cooldown periods)."
        ));
    }
    let not_done: Vec<&ScalingActivity> = shown
        .iter()
        .filter(|a| NOT_DONE.contains(&a.status.as_str()))
        .collect();
    if let Some(latest) = not_done.first() {
        findings.push(format!(
            "*{} of the last {} {} not done* ({}). Latest: {} `{}`: {}",
            not_done.len(),
            shown.len(),
            if not_done.len() == 1 { "was" } else { "were" },
            NOT_DONE.join(" or "),
            when(latest.start, now, tz),
            latest.resource_id,
            truncate(&latest.description, 200)
        ));
    }
    let tone = if !not_done.is_empty() {
        Tone::Bad
    } else if !findings.is_empty() {
        Tone::Warning
    } else {
        Tone::Good
    };
    if findings.is_empty() {
        findings.push(format!(
            "No failures, and no resource scaled more than {} times in the last hour.",
            limit.per_hour
        ));
    }
    (tone, findings)
}

/// The reply, apart from its footer. `activities` is newest first.
fn report(
    namespace: &str,
    activities: &[ScalingActivity],
    limit: Limits,
    now: DateTime<Utc>,
    tz: Tz,
) -> Message {
    let title = Some(format!("Scaling activities: {namespace}"));
    if activities.is_empty() {
        return Message {
            title,
            tone: Tone::Neutral,
            text: format!(
                "No scaling activities in the `{namespace}` namespace in the last six weeks (as long as \
                 AWS keeps them): nothing has scaled. If it should have, `/scale policies` shows why not."
            ).into(),
            ..Default::default()
        };
    }
    let shown = &activities[..activities.len().min(limit.shown)];
    let (tone, findings) = findings(activities, shown, limit, now, tz);
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for a in shown {
        *by_status.entry(a.status.as_str()).or_default() += 1;
    }
    let mut by_status: Vec<(&str, usize)> = by_status.into_iter().collect();
    by_status.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));

    let mut message = Message {
        title,
        tone,
        text: findings.join("\n").into(),
        ..Default::default()
    }
    .field(
        format!("By status (last {})", shown.len()),
        by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(" · "),
    );
    for a in shown {
        let mark = if NOT_DONE.contains(&a.status.as_str()) {
            "⚠️ "
        } else {
            ""
        };
        message = message.field(
            format!("{mark}{} · {}", when(a.start, now, tz), a.status),
            format!(
                "`{}`\n{}\n_{}_",
                a.resource_id,
                truncate(&a.description, 300),
                truncate(&a.cause, 300)
            ),
        );
    }
    message
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const TZ: Tz = chrono_tz::Europe::Berlin;
    const LIVE: &str = "function:persona-api:live";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn activity(minutes_ago: i64, resource: &str, status: &str) -> ScalingActivity {
        ScalingActivity {
            id: format!("{resource}-{minutes_ago}"),
            resource_id: resource.into(),
            description: format!("Setting desired concurrency to {}.", 10 + minutes_ago),
            cause: format!(
                "monitor alarm TargetTracking-{resource}-AlarmHigh-d4f0770c in state ALARM triggered policy persona-tracking"
            ),
            status: status.into(),
            start: now() - Duration::minutes(minutes_ago),
        }
    }

    fn limits(shown: usize) -> Limits {
        Limits { shown, per_hour: 6 }
    }

    #[test]
    fn more_than_six_in_an_hour_on_one_resource_is_frequent() {
        let seven: Vec<_> = (0..7)
            .map(|i| activity(5 + i * 8, LIVE, "Successful"))
            .collect();
        let m = report("lambda", &seven, limits(10), now(), TZ);
        assert_eq!(m.tone, Tone::Warning);
        assert!(
            m.text.plain().starts_with(
                "`function:persona-api:live` scaled 7 times in the last hour: scaling frequently, consider longer cooldowns"
            ),
            "{}",
            m.text.plain()
        );

        let six = &seven[..6];
        let m = report("lambda", six, limits(10), now(), TZ);
        assert_eq!(m.tone, Tone::Good);
        assert!(
            m.text.plain().starts_with("No failures"),
            "{}",
            m.text.plain()
        );

        // Seven, but spread over two resources, or partly older than an hour.
        let mut spread = seven.clone();
        spread[6].resource_id = "function:vc-start:live".into();
        assert!(frequent(&spread, now(), 6).is_empty());
        let mut old = seven.clone();
        old[6].start = now() - Duration::minutes(61);
        assert!(frequent(&old, now(), 6).is_empty());
    }

    #[test]
    fn a_full_sample_inside_the_hour_is_a_lower_bound() {
        let many: Vec<_> = (0..SAMPLE as i64)
            .map(|i| activity(i, LIVE, "Successful"))
            .collect();
        let m = report("lambda", &many, limits(10), now(), TZ);
        assert!(
            m.text.plain().contains("scaled at least 50 times"),
            "{}",
            m.text.plain()
        );
        // Only the asked-for number is listed, plus the status counts.
        assert_eq!(m.fields.len(), 11);
        assert_eq!(m.fields[0].value, "Successful 10");
    }

    #[test]
    fn failures_are_called_out_and_counted() {
        let activities = vec![
            activity(90, LIVE, "Failed"),
            activity(200, LIVE, "Successful"),
            activity(300, "function:vc-start:live", "Unfulfilled"),
            activity(400, LIVE, "Successful"),
        ];
        let mut newest_first = activities.clone();
        newest_first.sort_by_key(|a| std::cmp::Reverse(a.start));
        let m = report("lambda", &newest_first, limits(10), now(), TZ);
        assert_eq!(m.tone, Tone::Bad);
        // 12:00 UTC is 13:00 in Berlin in November; 90 minutes before is 11:30.
        assert!(
            m.text.plain().starts_with(
                "*2 of the last 4 were not done* (Failed or Unfulfilled). Latest: 11:30 `function:persona-api:live`: Setting desired concurrency to 100."
            ),
            "{}",
            m.text.plain()
        );
        assert_eq!(m.fields[0].label, "By status (last 4)");
        assert_eq!(m.fields[0].value, "Successful 2 · Failed 1 · Unfulfilled 1");
        assert_eq!(m.fields[1].label, "⚠️ 11:30 · Failed");
        assert_eq!(
            m.fields[1].value,
            "`function:persona-api:live`\nSetting desired concurrency to 100.\n\
             _monitor alarm TargetTracking-function:persona-api:live-AlarmHigh-d4f0770c in state ALARM triggered policy persona-tracking_"
        );
        assert_eq!(m.fields[2].label, "09:40 · Successful");
    }

    #[test]
    fn times_carry_the_date_when_not_today() {
        // 23:30 UTC on the 26th is 00:30 on the 27th in Berlin: today there.
        let late = Utc
            .with_ymd_and_hms(2026, 11, 26, 23, 30, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(when(late, now(), TZ), "00:30");
        let earlier = late - Duration::hours(2);
        assert_eq!(when(earlier, now(), TZ), "26.11. 22:30");
    }

    #[test]
    fn only_the_asked_for_number_is_listed_and_judged_for_failures() {
        let activities = vec![
            activity(10, LIVE, "Successful"),
            activity(20, LIVE, "InProgress"),
            activity(30, LIVE, "Failed"),
        ];
        let m = report("lambda", &activities, limits(2), now(), TZ);
        assert_eq!(m.tone, Tone::Good);
        assert_eq!(m.fields[0].value, "InProgress 1 · Successful 1");
        assert_eq!(m.fields.len(), 3);
    }

    #[test]
    fn nothing_recorded_is_said_in_words() {
        let m = report("lambda", &[], limits(10), now(), TZ);
        assert_eq!(m.tone, Tone::Neutral);
        assert!(
            m.text
                .plain()
                .starts_with("No scaling activities in the `lambda` namespace"),
            "{}",
            m.text.plain()
        );
        assert!(m.fields.is_empty());
    }
}
