//! Scheduled reports: contents against moto with seeded metrics and
//! injected Cost Explorer answers (scaling activities from the counting
//! Cloud, since moto lacks them), posted through the real chat path; the
//! schedule with a controllable clock across daylight-saving changes and
//! first Mondays; catch-up, restarts and two replicas on PostgreSQL.

use std::sync::{Arc, OnceLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use scalebot::cloud::{Cloud, ScalableTarget, ScalingActivity};
use scalebot::domain::FunctionName;
use scalebot::reports::ReportKind;
use scalebot::settings_file::SettingsFile;

use crate::support::app::{Options, TestApp, decode_png, message_text, spawn_app};
use crate::support::clock::{ManualClock, utc};
use crate::support::counting_cloud::CountingCloud;
use crate::support::moto;

const REPORTS: &str = "C0REPORTS";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

async fn put_metric(
    namespace: &str,
    dimension: (&str, &str),
    metric: &str,
    points: &[(DateTime<Utc>, f64)],
) {
    moto::put_metric(&moto::url(), namespace, dimension, metric, points).await;
}

/// An app whose Cloud counts calls; reports go to [`REPORTS`].
async fn app_with(
    tweak: impl FnOnce(&mut SettingsFile) + Send + 'static,
    endpoint: Option<String>,
    clock: Option<Arc<ManualClock>>,
    store_url: Option<String>,
) -> (TestApp, Arc<CountingCloud>) {
    let cell: Arc<OnceLock<Arc<CountingCloud>>> = Arc::new(OnceLock::new());
    let slot = cell.clone();
    let app = spawn_app(Options {
        wrap_cloud: Some(Box::new(move |inner| {
            let c = Arc::new(CountingCloud::new(inner));
            let _ = slot.set(c.clone());
            c
        })),
        tweak: Some(Box::new(move |s: &mut SettingsFile| {
            s.channels.reports = REPORTS.into();
            s.reports.enabled = false;
            tweak(s);
        })),
        aws_endpoint: endpoint,
        clock: clock.map(|c| c as Arc<dyn scalebot::clock::Clock>),
        store_url,
        ..Options::default()
    })
    .await;
    let cloud = cell.get().expect("the cloud was wrapped").clone();
    (app, cloud)
}

/// A provisioned-concurrency target on the function's `live` alias.
async fn register_target(cloud: &CountingCloud, function: &str, min: i32, max: i32) {
    cloud
        .register_scalable_target(&ScalableTarget {
            namespace: "lambda".into(),
            resource_id: format!("function:{function}:live"),
            dimension: "lambda:function:ProvisionedConcurrency".into(),
            min,
            max,
        })
        .await
        .expect("register target");
}

/// Waits for the report in `channel`, checks that it says every one of
/// `expected` and that its `charts` charts in the thread decode as PNG.
async fn check_report(app: &TestApp, channel: &str, expected: &[&str], charts: usize) {
    let post = wait_post(app, channel, 1).await;
    let text = message_text(&post);
    for e in expected {
        assert!(text.contains(e), "missing {e:?} in {text}");
    }
    let pngs = thread_uploads(app, &post, charts).await;
    assert_eq!(pngs.len(), charts);
    for png in &pngs {
        assert_eq!(decode_png(png), (1000, 500));
    }
}

/// The calls `cloud` counted, by operation.
fn calls(cloud: &CountingCloud) -> Vec<(&'static str, usize)> {
    cloud.calls().into_iter().collect()
}

/// Waits for the `n`th post in `channel` and returns it.
async fn wait_post(app: &TestApp, channel: &str, n: usize) -> serde_json::Value {
    app.slack
        .wait_for(60, &format!("post {n} in {channel}"), |s| {
            s.posts(channel).get(n - 1).cloned()
        })
        .await
}

/// The uploads in the thread of `post`, once `count` have arrived.
async fn thread_uploads(app: &TestApp, post: &serde_json::Value, count: usize) -> Vec<Vec<u8>> {
    let ts = post["_ts"].as_str().unwrap_or_default().to_owned();
    app.slack
        .wait_for(60, &format!("{count} charts in the thread"), |s| {
            let ups: Vec<Vec<u8>> = s
                .uploads()
                .into_iter()
                .filter(|u| u.thread_ts.as_deref() == Some(ts.as_str()))
                .map(|u| u.bytes)
                .collect();
            (ups.len() >= count).then_some(ups)
        })
        .await
}

fn activity(i: i64, status: &str, function: &str, now: DateTime<Utc>) -> ScalingActivity {
    ScalingActivity {
        id: format!("act-{i}"),
        resource_id: format!("function:{function}:live"),
        description: format!("Setting desired concurrency to {}.", 10 + i),
        cause: "monitor alarm TargetTracking-AlarmHigh in state ALARM triggered policy tracking"
            .into(),
        status: status.into(),
        start: now - Duration::hours(i + 1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_posts_a_verdict_with_its_charts_in_the_thread_from_one_metric_call() {
    let (f, db, node) = (
        unique("health-fn"),
        unique("health-db"),
        unique("health-redis"),
    );
    let now = Utc::now();
    let mut duration = Vec::new();
    let mut throttles = Vec::new();
    let mut cpu = Vec::new();
    let mut cache = Vec::new();
    for k in (1..=23 * 6).rev() {
        let t = now - Duration::minutes(10 * k);
        duration.push((t, if k == 40 { 900.0 } else { 120.0 + k as f64 }));
        throttles.push((t, if k == 3 { 5.0 } else { 0.0 }));
        cpu.push((t, if k == 50 { 85.0 } else { 40.0 }));
        cache.push((t, 20.0));
    }
    put_metric("AWS/Lambda", ("FunctionName", &f), "Duration", &duration).await;
    put_metric("AWS/Lambda", ("FunctionName", &f), "Throttles", &throttles).await;
    put_metric(
        "AWS/RDS",
        ("DBInstanceIdentifier", &db),
        "CPUUtilization",
        &cpu,
    )
    .await;
    put_metric(
        "AWS/ElastiCache",
        ("CacheClusterId", &node),
        "EngineCPUUtilization",
        &cache,
    )
    .await;
    let (ff, dd, nn) = (f.clone(), db.clone(), node.clone());
    let (app, cloud) = app_with(
        move |s| {
            s.reports.functions = vec![FunctionName::parse(&ff).expect("a name")];
            s.reports.database = dd;
            s.reports.cache_clusters = vec![nn];
        },
        None,
        None,
        None,
    )
    .await;

    app.command("health", "U0ONCALL", "C0OPS").await;
    check_report(
        &app,
        "C0OPS",
        &[
            "Daily health check",
            "Needs a look",
            &format!("{f} throttled 5 times"),
            &format!("RDS {db} CPU peaked at 85 %"),
            "max 900 ms",
            &format!("ElastiCache {node} engine CPU"),
            "avg 20 %, peak 20 %",
        ],
        3,
    )
    .await;
    assert_eq!(app.finished_outcome("health").await, "ok");
    // The whole report is one GetMetricData call (7 queries here, 19 for
    // five functions); on demand it takes no snapshot.
    assert_eq!(calls(&cloud), vec![("cloudwatch:GetMetricData", 1)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_lists_targets_activities_and_the_weeks_lambda_cost() {
    let account = crate::readonly::fresh_account();
    let endpoint = crate::readonly::account_proxy(account.clone()).await;
    let f = unique("review-fn");
    let today = Utc::now().date_naive();
    // Fourteen UTC days: $10 a day the week before, $15 this week.
    let results_by_time: Vec<serde_json::Value> = (1..=14)
        .rev()
        .map(|k| {
            let day = today - Duration::days(k);
            serde_json::json!({
                "TimePeriod": {
                    "Start": day.format("%Y-%m-%d").to_string(),
                    "End": (day + Duration::days(1)).format("%Y-%m-%d").to_string()
                },
                "Total": {},
                "Groups": [
                    {"Keys": ["AWS Lambda"], "Metrics": {"BlendedCost": {"Amount": if k <= 7 { "15" } else { "10" }, "Unit": "USD"}}},
                    {"Keys": ["Amazon Relational Database Service"], "Metrics": {"BlendedCost": {"Amount": "99", "Unit": "USD"}}}
                ],
                "Estimated": false
            })
        })
        .collect();
    moto::queue_cost_and_usage_in(&account, results_by_time).await;

    let ff = f.clone();
    let (app, cloud) = app_with(
        move |s| s.reports.functions = vec![FunctionName::parse(&ff).expect("a name")],
        Some(endpoint.clone()),
        None,
        None,
    )
    .await;
    moto::function_with_alias_at(&endpoint, &f).await;
    register_target(&cloud, &f, 2, 40).await;
    let now = Utc::now();
    *cloud.activities.lock().expect("lock") = (0..12)
        .map(|i| activity(i, if i == 2 { "Failed" } else { "Successful" }, &f, now))
        .collect();
    cloud.reset();

    app.command("review", "U0ONCALL", "C0OPS").await;
    check_report(
        &app,
        "C0OPS",
        &[
            "Weekly scaling-policy review",
            "Lambda cost rose +50.0 % week on week, to $105.00",
            "1 of the last 10 scaling activities did not succeed",
            &format!("`function:{f}:live` min 2 · max 40"),
            "$105.00 (+50.0 % vs. $70.00 the week before)",
            "Last 10 scaling activities",
            "Setting desired concurrency to 12.",
            "*Failed*",
        ],
        1,
    )
    .await;
    assert_eq!(
        calls(&cloud),
        vec![
            ("application-autoscaling:DescribeScalableTargets", 1),
            ("application-autoscaling:DescribeScalingActivities", 1),
            ("ce:GetCostAndUsage", 1),
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_recommends_from_the_figures_it_names() {
    let f = unique("cap-fn");
    let now = Utc::now();
    let noon = |k: i64| {
        (now - Duration::days(k))
            .date_naive()
            .and_hms_opt(12, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now)
    };
    // 28 days rising by 100 a day from 2,000; concurrency peaking at 45.
    let invocations: Vec<_> = (2..30)
        .rev()
        .map(|k| (noon(k), 2000.0 + 100.0 * (29 - k) as f64))
        .collect();
    let concurrency: Vec<_> = (2..30)
        .rev()
        .map(|k| (noon(k), if k == 10 { 45.0 } else { 20.0 }))
        .collect();
    put_metric(
        "AWS/Lambda",
        ("FunctionName", &f),
        "Invocations",
        &invocations,
    )
    .await;
    put_metric(
        "AWS/Lambda",
        ("FunctionName", &f),
        "ConcurrentExecutions",
        &concurrency,
    )
    .await;
    let ff = f.clone();
    let (app, cloud) = app_with(
        move |s| s.reports.functions = vec![FunctionName::parse(&ff).expect("a name")],
        None,
        None,
        None,
    )
    .await;
    moto::function_with_alias(&f).await;
    register_target(&cloud, &f, 5, 50).await;
    *cloud.activities.lock().expect("lock") = (0..50)
        .map(|i| {
            activity(
                i,
                if i % 10 == 0 { "Failed" } else { "Successful" },
                &f,
                now,
            )
        })
        .collect();
    cloud.reset();

    app.command("capacity", "U0ONCALL", "C0OPS").await;
    check_report(
        &app,
        "C0OPS",
        &[
        "Monthly capacity plan",
        &format!(
            "raise max capacity of `function:{f}:live`: peak concurrency 45 is 90.0 % of its max 50"
        ),
        "45 of the last 50 scaling activities successful (90.0 %)",
        "on the busiest day",
        "Forecast",
        "next month's busiest day",
        ],
        1,
    )
    .await;
    assert_eq!(
        calls(&cloud),
        vec![
            ("application-autoscaling:DescribeScalableTargets", 1),
            ("application-autoscaling:DescribeScalingActivities", 1),
            ("cloudwatch:GetMetricData", 1),
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_fails_is_shown_as_its_error_and_the_rest_is_posted() {
    let f = unique("part-fn");
    let ff = f.clone();
    let (app, cloud) = app_with(
        move |s| s.reports.functions = vec![FunctionName::parse(&ff).expect("a name")],
        None,
        None,
        None,
    )
    .await;
    let now = Utc::now();
    *cloud.activities.lock().expect("lock") =
        (0..3).map(|i| activity(i, "Successful", &f, now)).collect();
    cloud
        .denied
        .lock()
        .expect("lock")
        .push("ce:GetCostAndUsage");

    app.command("review", "U0ONCALL", "C0OPS").await;
    let post = wait_post(&app, "C0OPS", 1).await;
    let text = message_text(&post);
    for expected in [
        "Needs a look",
        "Lambda cost could not be read",
        "could not be read: the bot's AWS role is not allowed to call ce:GetCostAndUsage",
        "Last 3 scaling activities",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
    assert_eq!(app.finished_outcome("review").await, "ok");
    app.stop().await;
}

/// Moves the clock to `at` and runs one scheduler pass.
async fn tick_at(app: &TestApp, clock: &ManualClock, at: &str) -> Vec<ReportKind> {
    clock.set(utc(at));
    app.engine.reports_tick().await
}

/// Settings for the schedule tests: one function without data (a fast
/// report), and 90 minutes of catch-up: the 09:00 report is still due at
/// 10:00, and no slot reaches the next day's check.
fn schedule_only(s: &mut SettingsFile) {
    s.reports.functions = vec![FunctionName::parse("sched-fn").expect("a name")];
    s.reports.catch_up_minutes = 90;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_report_is_at_nine_in_berlin_across_both_daylight_saving_changes() {
    let clock = Arc::new(ManualClock::at(utc("2026-03-28T07:00:00Z")));
    let (app, _) = app_with(schedule_only, None, Some(clock.clone()), None).await;
    use ReportKind::Daily;
    // Saturday 28 March, winter time: 09:00 is 08:00 UTC.
    assert_eq!(tick_at(&app, &clock, "2026-03-28T07:59:00Z").await, vec![]);
    assert_eq!(
        tick_at(&app, &clock, "2026-03-28T08:00:05Z").await,
        vec![Daily]
    );
    assert_eq!(tick_at(&app, &clock, "2026-03-28T08:00:35Z").await, vec![]);
    // Sunday 29 March, summer time from 02:00: 09:00 is 07:00 UTC.
    assert_eq!(tick_at(&app, &clock, "2026-03-29T06:59:00Z").await, vec![]);
    assert_eq!(
        tick_at(&app, &clock, "2026-03-29T07:00:05Z").await,
        vec![Daily]
    );
    // Saturday 24 October, still summer time: 07:00 UTC.
    assert_eq!(
        tick_at(&app, &clock, "2026-10-24T07:00:05Z").await,
        vec![Daily]
    );
    // Sunday 25 October, winter time from 03:00: not at 07:00 UTC (08:00 local) …
    assert_eq!(tick_at(&app, &clock, "2026-10-25T07:00:05Z").await, vec![]);
    // … but at 08:00 UTC.
    assert_eq!(
        tick_at(&app, &clock, "2026-10-25T08:00:05Z").await,
        vec![Daily]
    );

    let posts = app.slack.posts(REPORTS);
    assert_eq!(posts.len(), 4, "one daily report a day");
    for p in &posts {
        assert!(message_text(p).contains("Daily health check"), "{p}");
    }
    let runs = app
        .engine
        .store()
        .report_runs("daily", 10)
        .await
        .expect("report runs");
    let slots: Vec<String> = runs
        .iter()
        .map(|r| {
            DateTime::from_timestamp_millis(r.slot_ms)
                .unwrap_or_default()
                .to_rfc3339()
        })
        .collect();
    assert_eq!(
        slots,
        vec![
            "2026-10-25T08:00:00+00:00",
            "2026-10-24T07:00:00+00:00",
            "2026-03-29T07:00:00+00:00",
            "2026-03-28T08:00:00+00:00",
        ]
    );
    assert!(
        runs.iter().all(|r| r.outcome.as_str() == "posted"),
        "{runs:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capacity_plan_is_on_the_first_monday_of_the_month() {
    let clock = Arc::new(ManualClock::at(utc("2026-05-31T12:00:00Z")));
    let (app, _) = app_with(schedule_only, None, Some(clock.clone()), None).await;
    use ReportKind::{Daily, Monthly, Weekly};
    // June 2026 starts on a Monday: 10:00 CEST on the 1st is 08:00 UTC
    // (the daily report an hour earlier is still within its catch-up hour).
    assert_eq!(
        tick_at(&app, &clock, "2026-06-01T08:00:05Z").await,
        vec![Daily, Weekly, Monthly]
    );
    // Monday 31 August is August's last Monday: the weekly review only.
    assert_eq!(
        tick_at(&app, &clock, "2026-08-31T08:00:05Z").await,
        vec![Daily, Weekly]
    );
    // September 2026 starts on a Tuesday: nothing monthly on the 1st …
    assert_eq!(
        tick_at(&app, &clock, "2026-09-01T08:00:05Z").await,
        vec![Daily]
    );
    // … the plan comes on Monday the 7th.
    assert_eq!(
        tick_at(&app, &clock, "2026-09-07T08:00:05Z").await,
        vec![Daily, Weekly, Monthly]
    );
    let monthly: Vec<_> = app
        .slack
        .posts(REPORTS)
        .into_iter()
        .filter(|p| message_text(p).contains("Monthly capacity plan"))
        .collect();
    assert_eq!(monthly.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_report_is_caught_up_once_and_a_restart_posts_no_second_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("reports.db").display());
    // Friday 27 November 2026: the bot was down at 09:00 CET (08:00 UTC)
    // and comes back at 11:30.
    let clock = Arc::new(ManualClock::at(utc("2026-11-27T10:30:00Z")));
    let tweak = |s: &mut SettingsFile| {
        schedule_only(s);
        s.reports.catch_up_minutes = 180;
    };
    let (app, _) = app_with(tweak, None, Some(clock.clone()), Some(store.clone())).await;
    assert_eq!(app.engine.reports_tick().await, vec![ReportKind::Daily]);
    assert_eq!(app.engine.reports_tick().await, vec![]);
    assert_eq!(app.slack.posts(REPORTS).len(), 1);
    app.stop().await;

    // A restart on the same store, with the scheduler loop running: the
    // slot is taken, nothing is posted again.
    let (app, _) = app_with(
        move |s| {
            tweak(s);
            s.reports.enabled = true;
            s.reports.check_interval_seconds = 1;
        },
        None,
        Some(clock.clone()),
        Some(store.clone()),
    )
    .await;
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    assert_eq!(app.slack.posts(REPORTS).len(), 0, "no second copy");
    // Down again over the next 09:00 and back after the catch-up window
    // (three hours): that day's report is skipped.
    clock.set(utc("2026-11-28T11:30:00Z"));
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    assert_eq!(app.slack.posts(REPORTS).len(), 0, "too late to catch up");
    // The loop posts the next one on time by itself.
    clock.set(utc("2026-11-29T08:00:10Z"));
    let post = wait_post(&app, REPORTS, 1).await;
    assert!(message_text(&post).contains("Daily health check"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_slack_refuses_is_tried_again_later_and_posted_once() {
    let clock = Arc::new(ManualClock::at(utc("2026-11-27T08:00:05Z")));
    let (app, _) = app_with(
        |s| {
            schedule_only(s);
            s.slack.max_rate_limit_retries = 0;
        },
        None,
        Some(clock.clone()),
        None,
    )
    .await;
    app.slack.rate_limit("chat.postMessage", 1, 1);
    assert_eq!(app.engine.reports_tick().await, vec![]);
    let runs = app
        .engine
        .store()
        .report_runs("daily", 1)
        .await
        .expect("runs");
    assert_eq!(runs[0].outcome.as_str(), "unposted");
    // Not at once on the next pass: five minutes later.
    assert_eq!(tick_at(&app, &clock, "2026-11-27T08:01:05Z").await, vec![]);
    assert_eq!(
        tick_at(&app, &clock, "2026-11-27T08:05:05Z").await,
        vec![ReportKind::Daily]
    );
    assert_eq!(tick_at(&app, &clock, "2026-11-27T08:15:05Z").await, vec![]);
    let posts = app.slack.posts(REPORTS);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(message_text(&posts[0]).contains("Daily health check"));
    let runs = app
        .engine
        .store()
        .report_runs("daily", 1)
        .await
        .expect("runs");
    assert_eq!(runs[0].outcome.as_str(), "posted");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for line in [
        r#"scalebot_scheduled_reports_total{report="daily",outcome="unposted"} 1"#,
        r#"scalebot_scheduled_reports_total{report="daily",outcome="posted"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in {metrics}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_post_each_report_once() {
    let url = crate::store::postgres_url().await;
    let clock = Arc::new(ManualClock::at(utc("2026-06-01T08:00:05Z")));
    let (a, _) = app_with(schedule_only, None, Some(clock.clone()), Some(url.clone())).await;
    let (b, _) = app_with(schedule_only, None, Some(clock.clone()), Some(url.clone())).await;
    // Three passes of both replicas at once: every report is claimed by
    // exactly one of them in the first pass, and by nobody afterwards.
    let mut all: Vec<&str> = Vec::new();
    for _ in 0..3 {
        let (pa, pb) = tokio::join!(a.engine.reports_tick(), b.engine.reports_tick());
        all.extend(pa.iter().chain(pb.iter()).map(|k| k.key()));
    }
    all.sort_unstable();
    assert_eq!(all, vec!["daily", "monthly", "weekly"], "each report once");
    let posts = a.slack.posts(REPORTS).len() + b.slack.posts(REPORTS).len();
    assert_eq!(posts, 3, "three reports, each posted by one replica");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_run_stores_a_snapshot_prunes_old_ones_and_exports_it() {
    use scalebot::store::SnapshotRow;
    let clock = Arc::new(ManualClock::at(utc("2026-11-27T08:00:05Z")));
    let f = unique("snap-fn");
    let ff = f.clone();
    let (app, cloud) = app_with(
        move |s| {
            schedule_only(s);
            s.reports.functions = vec![FunctionName::parse(&ff).expect("a name")];
            s.reports.snapshot_retention_days = 30;
        },
        None,
        Some(clock.clone()),
        None,
    )
    .await;
    moto::function_with_alias(&f).await;
    register_target(&cloud, &f, 3, 33).await;
    let store = app.engine.store();
    let old = |id: &str, reason: &str, days: i64| SnapshotRow {
        id: id.into(),
        taken_ms: (utc("2026-11-27T08:00:00Z") - Duration::days(days)).timestamp_millis(),
        day: (utc("2026-11-27T08:00:00Z") - Duration::days(days))
            .format("%Y-%m-%d")
            .to_string(),
        reason: reason.into(),
        body: r#"{"targets":[],"policies":[]}"#.into(),
    };
    store
        .insert_snapshot(&old("S-OLD-DAILY", "daily", 31))
        .await
        .expect("insert");
    store
        .insert_snapshot(&old("S-OLD-PLAN", "before plan P-1", 31))
        .await
        .expect("insert");
    store
        .insert_snapshot(&old("S-KEPT", "daily", 29))
        .await
        .expect("insert");
    // A snapshot taken before a change later that day must not shadow the
    // daily one for `/scale rollback 2026-11-27`.
    cloud.reset();

    assert_eq!(app.engine.reports_tick().await, vec![ReportKind::Daily]);
    let post = wait_post(&app, REPORTS, 1).await;
    let text = message_text(&post);
    assert!(text.contains("Policy snapshot"), "{text}");
    assert!(text.contains("/scale rollback 2026-11-27"), "{text}");
    assert!(text.contains("(1 older removed)"), "{text}");
    // The daily report's own calls, and the snapshot's reads: targets of
    // both namespaces, and the policies of each namespace whose targets
    // could be read (moto 5.2.5 refuses the ElastiCache one, which the
    // snapshot then lists as missing).
    let calls = cloud.calls();
    assert_eq!(calls.get("cloudwatch:GetMetricData"), Some(&1));
    assert_eq!(
        calls.get("application-autoscaling:DescribeScalableTargets"),
        Some(&2)
    );
    let policies = calls
        .get("application-autoscaling:DescribeScalingPolicies")
        .copied()
        .unwrap_or(0);
    assert!((1..=2).contains(&policies), "{calls:?}");
    // The cache's nodes, from its replication group (none configured).
    assert_eq!(calls.get("elasticache:DescribeReplicationGroups"), Some(&1));
    assert_eq!(cloud.total(), 4 + policies);

    clock.set(utc("2026-11-27T15:00:00Z"));
    store
        .insert_snapshot(&SnapshotRow {
            id: "S-LATER".into(),
            taken_ms: utc("2026-11-27T15:00:00Z").timestamp_millis(),
            day: "2026-11-27".into(),
            reason: "before plan P-2".into(),
            body: r#"{"targets":[],"policies":[]}"#.into(),
        })
        .await
        .expect("insert");
    let day = store
        .snapshot_of_day("2026-11-27")
        .await
        .expect("query")
        .expect("a snapshot of the day");
    assert_eq!(day.reason, "daily");
    let days = store.snapshot_days(10).await.expect("days");
    assert!(days.contains(&"2026-10-29".to_owned()), "kept: {days:?}");
    assert!(
        store
            .snapshot_of_day("2026-10-27")
            .await
            .expect("query")
            .is_some_and(|s| s.id == "S-OLD-PLAN"),
        "snapshots taken before a change are not pruned"
    );

    // The export CLI reads the same store.
    let config = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(
        config.path(),
        format!("[store]\nurl = \"{}\"\n", app.store_url),
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scalebot"))
        .args(["snapshot", "export", "--date", "2026-11-27", "--config"])
        .arg(config.path())
        .output()
        .expect("run scalebot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["id"], day.id.as_str());
    assert_eq!(json["reason"], "daily");
    let targets = json["targets"].as_array().expect("targets");
    assert!(
        targets
            .iter()
            .any(|t| t["resource_id"] == format!("function:{f}:live")
                && t["min"] == 3
                && t["max"] == 33),
        "{json}"
    );
    // `/scale rollback 2026-11-27` restores the daily snapshot, not the
    // later (empty) one taken before a change that day.
    register_target(&cloud, &f, 1, 10).await;
    app.command("rollback 2026-11-27", "U0ONCALL", "C0OPS")
        .await;
    let (_, plan) = app.wait_plan("rollback 2026-11-27").await;
    let text = message_text(&plan);
    assert!(
        text.contains(&format!("function:{f}:live"))
            && text.contains("min 1 / max 10 → min 3 / max 33"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Restores snapshot {}", day.id)),
        "{text}"
    );

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_scalebot"))
        .args(["snapshot", "export", "--date", "2025-01-01", "--config"])
        .arg(config.path())
        .output()
        .expect("run scalebot");
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("there is no snapshot of 2025-01-01"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_left_running_by_a_dead_replica_is_posted_once_its_lease_runs_out() {
    let clock = Arc::new(ManualClock::at(utc("2026-11-27T08:00:05Z")));
    let (app, _) = app_with(schedule_only, None, Some(clock.clone()), None).await;
    let store = app.engine.store();
    let slot = utc("2026-11-27T08:00:00Z").timestamp_millis();
    let wall = chrono::Utc::now().timestamp_millis();
    // Another replica claimed the slot and is still alive (its lease runs).
    assert!(
        store
            .claim_report("daily", slot, slot + 1_000, wall + 60_000)
            .await
            .expect("claim")
    );
    assert_eq!(app.engine.reports_tick().await, vec![]);
    assert!(
        app.slack.posts(REPORTS).is_empty(),
        "a held slot is left alone"
    );
    // It died: the lease ran out with the slot still `running`.
    sqlx::query("UPDATE report_runs SET lease_ms = $1 WHERE report = 'daily' AND slot_ms = $2")
        .bind(wall - 1)
        .bind(slot)
        .execute(store.pool())
        .await
        .expect("expire the lease");
    assert_eq!(app.engine.reports_tick().await, vec![ReportKind::Daily]);
    assert_eq!(app.engine.reports_tick().await, vec![]);
    let posts = app.slack.posts(REPORTS);
    assert_eq!(posts.len(), 1, "{posts:?}");
    let runs = store.report_runs("daily", 1).await.expect("runs");
    assert_eq!(runs[0].outcome.as_str(), "posted");
    app.stop().await;
}
