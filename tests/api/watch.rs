//! The watch after a change (the runbook's "monitor for improvement")
//! through the real server, AWS in moto: "settled" only on datapoints from
//! after the change; without any by the last check, a plain "no data yet"
//! and what to check. The engine's clock is a test clock set in the past,
//! so that the minutes "after the change" are already in CloudWatch (moto)
//! when the watch reads them.

use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use scalebot::settings_file::SettingsFile;

use crate::support::app::{INCIDENTS, Options, TestApp, message_text, spawn_app};
use crate::support::clock::ManualClock;
use crate::support::moto;

const OPS: &str = "U0WATCHOPS";

async fn app_at(clock: Arc<ManualClock>) -> TestApp {
    spawn_app(Options {
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            s.roles.insert("operators".into(), vec![OPS.into()]);
        })),
        clock: Some(clock),
        ..Options::default()
    })
    .await
}

/// Plans and confirms `command`, and waits for its result.
async fn change(app: &TestApp, command: &str, result: &str) {
    app.command(command, OPS, "C0WATCH").await;
    let (plan, _) = app.wait_plan(command).await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post(result).await;
}

fn minute_ago(minutes: i64) -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(Duration::minutes(1))
        .expect("a minute")
        - Duration::minutes(minutes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_at_zero_after_a_reserved_change_are_settled_with_their_figures() {
    let aws = moto::url();
    let f = "settle-fn";
    moto::create_function(&aws, f, Some(50)).await;
    // The change happens at `at` on the bot's clock: 40 throttles a minute
    // in the ten minutes before, none in the four minutes after.
    let at = minute_ago(20);
    let points: Vec<_> = (-10..=3)
        .map(|k| (at + Duration::minutes(k), if k < 0 { 40.0 } else { 0.0 }))
        .collect();
    moto::put_lambda_metric(&aws, f, "Throttles", &points).await;
    let clock = Arc::new(ManualClock::at(at));
    let app = app_at(clock.clone()).await;
    change(
        &app,
        "concurrency settle-fn 80",
        "reserved concurrency of `settle-fn` is now 80",
    )
    .await;
    // Nothing after the change is visible while the clock stands at it:
    // no verdict yet (a verdict needs the watch's last check, a minute on).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        !app.slack
            .posts(INCIDENTS)
            .iter()
            .any(|p| message_text(p).contains("settle-fn` settled")),
        "settled before any datapoint after the change"
    );
    clock.set(at + Duration::minutes(5));
    let verdict = app.wait_incident_post("`settle-fn` settled").await;
    let text = message_text(&verdict);
    assert!(
        text.contains(
            "400 throttles in the 10 minutes before the change, 0 in the 4 minutes of data since"
        ),
        "{text}"
    );
    app.slack
        .wait_for(20, "the before/after chart", |s| {
            s.uploads()
                .into_iter()
                .find(|u| u.filename.starts_with("after-settle-fn"))
        })
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_datapoint_after_the_change_is_said_plainly_and_never_settled() {
    let aws = moto::url();
    let f = "silent-fn";
    moto::create_function(&aws, f, Some(50)).await;
    let at = minute_ago(20);
    let before: Vec<_> = (-10..0)
        .map(|k| (at + Duration::minutes(k), 25.0))
        .collect();
    moto::put_lambda_metric(&aws, f, "Throttles", &before).await;
    let app = app_at(Arc::new(ManualClock::at(at))).await;
    change(
        &app,
        "concurrency silent-fn 90",
        "reserved concurrency of `silent-fn` is now 90",
    )
    .await;
    // The tests' watch checks every second for a minute.
    let verdict = app
        .slack
        .wait_for(90, "the watch's last word", |s| {
            s.posts(INCIDENTS)
                .into_iter()
                .find(|p| message_text(p).contains("CloudWatch had no `Throttles` data"))
        })
        .await;
    let text = message_text(&verdict);
    assert!(
        text.contains("for `silent-fn` after the change at"),
        "{text}"
    );
    assert!(
        text.contains("250 throttles in the 10 minutes before"),
        "{text}"
    );
    assert!(text.contains("this is no verdict"), "{text}");
    assert!(
        text.contains("check that `silent-fn` is receiving traffic"),
        "{text}"
    );
    assert!(
        !app.slack
            .posts(INCIDENTS)
            .iter()
            .any(|p| message_text(p).contains("`silent-fn` settled")),
        "never called settled"
    );
    app.stop().await;
}

/// A raise of provisioned concurrency is watched on the alias's spillover
/// (`ProvisionedConcurrencySpilloverInvocations`, dimensions FunctionName
/// and Resource). moto 5.2.5 has no provisioned-concurrency configs: the
/// PartialCloud of tests/support answers those two Lambda calls from
/// memory (as the batch tests do); CloudWatch and the rest are moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_raise_is_watched_on_its_spillover() {
    use crate::support::partial_cloud::PartialCloud;
    let aws = moto::url();
    let f = "spill-fn";
    moto::function_with_alias(f).await;
    let at = minute_ago(20);
    let points: Vec<_> = (-10..=2)
        .map(|k| (at + Duration::minutes(k), if k < 0 { 30.0 } else { 0.0 }))
        .collect();
    moto::put_metric_dims(
        &aws,
        "AWS/Lambda",
        &[("FunctionName", f), ("Resource", "spill-fn:live")],
        "ProvisionedConcurrencySpilloverInvocations",
        &points,
    )
    .await;
    let clock = Arc::new(ManualClock::at(at));
    let app = spawn_app(Options {
        wrap_cloud: Some(Box::new(|inner| Arc::new(PartialCloud::new(inner)))),
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            s.roles.insert("operators".into(), vec![OPS.into()]);
        })),
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    change(
        &app,
        "provisioned spill-fn live 10",
        "provisioned concurrency of `spill-fn:live` is now 10",
    )
    .await;
    let watching: i64 = sqlx::Row::try_get(
        &sqlx::query(
            "SELECT COUNT(*) AS n FROM watches WHERE function = 'spill-fn' \
             AND metric = 'ProvisionedConcurrencySpilloverInvocations' AND resource = 'spill-fn:live'",
        )
        .fetch_one(app.engine.store().pool())
        .await
        .expect("count"),
        "n",
    )
    .expect("n");
    assert_eq!(watching, 1, "the spillover watch is in the store");
    clock.set(at + Duration::minutes(4));
    let verdict = app.wait_incident_post("`spill-fn:live` settled").await;
    assert!(
        message_text(&verdict).contains(
            "300 invocations beyond provisioned concurrency in the 10 minutes before the change, 0 in"
        ),
        "{verdict}"
    );
    app.stop().await;
}
