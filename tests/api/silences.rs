//! Silences and maintenance windows through the real server: alarms posted
//! as signed SNS, commands as signed Slack requests, the clock moved by the
//! test. A silenced alarm is stored and finished as `silenced`, opens and
//! escalates nothing and shows up in the hourly digest; the same alarm
//! opens an incident once the silence has run out. Silencing needs the
//! incident-control permission, bad durations are refused with a sentence,
//! a maintenance window from the config silences during its stretch only,
//! and a silence made through one replica holds on another.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use scalebot::config::{MaintenanceWindow, WindowTime};
use scalebot::domain::glob::Glob;
use scalebot::settings_file::SettingsFile;
use sqlx::Row;

use crate::sns::{TOPIC, alarm, deliver, sns_options};
use crate::support::app::{INCIDENTS, TestApp, message_text, spawn_app};
use crate::support::clock::ManualClock;
use crate::support::sns::SnsSigner;

const OPERATOR: &str = "U0OPS";
const VIEWER: &str = "U0VIEWER";
const OPS_CHANNEL: &str = "C0OPSROOM";

/// A whole hour plus five minutes, near the real time (the signed
/// messages carry the real time).
fn start_time() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    Utc.timestamp_opt(now - now.rem_euclid(3600) + 300, 0)
        .single()
        .expect("a time")
}

async fn app_with_clock(
    clock: Arc<ManualClock>,
    tweak: impl FnOnce(&mut SettingsFile) + Send + 'static,
) -> TestApp {
    let mut opts = sns_options(
        move |s: &mut SettingsFile| {
            // An unsilenced incident would escalate a minute after opening.
            s.escalation.levels[0].escalate_after_seconds = Some(60);
            tweak(s);
        },
        None,
    );
    opts.clock = Some(clock);
    spawn_app(opts).await
}

/// Delivers a signed ALARM (or other state) and waits until the work
/// queue has finished it; its outcome.
async fn fire(app: &TestApp, name: &str, state: &str, function: &str) -> String {
    let id = format!("msg-{}", uuid::Uuid::new_v4());
    let body = SnsSigner::get().notification(TOPIC, &id, None, &alarm(name, state, function));
    assert_eq!(deliver(app, &body, &[]).await.0, 200, "accepted");
    outcome_of(app, &id).await
}

async fn outcome_of(app: &TestApp, message_id: &str) -> String {
    for _ in 0..200 {
        let row = sqlx::query("SELECT outcome FROM sns_messages WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(app.engine.store().pool())
            .await
            .expect("read the message");
        if let Some(outcome) = row.and_then(|r| r.try_get::<Option<String>, _>("outcome").ok())
            && let Some(outcome) = outcome
        {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("message {message_id} was never finished");
}

async fn open_count(app: &TestApp) -> usize {
    app.engine
        .store()
        .open_incidents()
        .await
        .expect("open incidents")
        .len()
}

fn posts_with(app: &TestApp, channel: &str, needle: &str) -> usize {
    app.slack
        .posts(channel)
        .iter()
        .filter(|p| message_text(p).contains(needle))
        .count()
}

/// Waits for a post in `channel` containing `needle`.
async fn wait_post(app: &TestApp, channel: &str, needle: &str) -> serde_json::Value {
    app.slack
        .wait_for(30, needle, |s| {
            s.posts(channel)
                .into_iter()
                .find(|p| message_text(p).contains(needle))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_function_opens_nothing_escalates_nothing_and_is_in_the_digest_until_it_expires()
{
    let t0 = start_time();
    let clock = Arc::new(ManualClock::at(t0));
    let app = app_with_clock(clock.clone(), |_| {}).await;

    app.command(
        "silence sil-fn 2h load test of sil-fn",
        OPERATOR,
        OPS_CHANNEL,
    )
    .await;
    let said = wait_post(&app, OPS_CHANNEL, "silenced").await;
    let text = message_text(&said);
    assert!(
        text.contains("sil-fn") && text.contains("load test of sil-fn"),
        "{text}"
    );
    // Where the on-call people look, too.
    wait_post(&app, INCIDENTS, "load test of sil-fn").await;
    let silences = app
        .engine
        .store()
        .active_silences(t0.timestamp_millis())
        .await
        .expect("silences");
    assert_eq!(silences.len(), 1, "{silences:?}");
    assert_eq!(silences[0].created_by, OPERATOR);
    assert_eq!(
        silences[0].until_ms,
        (t0 + chrono::Duration::hours(2)).timestamp_millis()
    );

    // The function's alarm (matched by its FunctionName dimension) is
    // stored and finished, but opens nothing.
    assert_eq!(
        fire(&app, "sil-fn-throttles", "ALARM", "sil-fn").await,
        "silenced"
    );
    assert_eq!(
        fire(&app, "sil-fn-throttles", "ALARM", "sil-fn").await,
        "silenced"
    );
    assert_eq!(
        open_count(&app).await,
        0,
        "no incident for a silenced alarm"
    );
    // Past the escalation deadline an incident would have had: nothing
    // escalates, nothing is posted about the alarm.
    clock.set(t0 + chrono::Duration::minutes(10));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(open_count(&app).await, 0);
    assert_eq!(posts_with(&app, INCIDENTS, "Escalated"), 0);
    assert_eq!(posts_with(&app, INCIDENTS, "ALARM: sil-fn-throttles"), 0);
    // Another function's alarm is not silenced.
    assert_eq!(
        fire(&app, "other-fn-throttles", "ALARM", "other-fn").await,
        "alarm"
    );
    app.wait_incident_post("ALARM: other-fn-throttles").await;

    // The hour closes: one digest lists the held-back alarm, twice over.
    assert_eq!(
        posts_with(&app, INCIDENTS, "Silenced alarms"),
        0,
        "not before the hour"
    );
    clock.set(t0 + chrono::Duration::minutes(56));
    let digest = app.wait_incident_post("Silenced alarms").await;
    let text = message_text(&digest);
    assert!(
        text.contains("sil-fn-throttles") && text.contains("×2"),
        "{text}"
    );
    assert!(text.contains(&silences[0].id), "names the silence: {text}");
    assert!(!text.contains("other-fn-throttles"), "{text}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        posts_with(&app, INCIDENTS, "Silenced alarms"),
        1,
        "once an hour"
    );

    // The silence runs out by the clock alone: the same alarm opens an incident.
    clock.set(t0 + chrono::Duration::minutes(121));
    assert_eq!(
        fire(&app, "sil-fn-throttles", "ALARM", "sil-fn").await,
        "alarm"
    );
    app.wait_incident_post("ALARM: sil-fn-throttles").await;
    let listed = app
        .engine
        .store()
        .active_silences(clock_ms(&clock))
        .await
        .expect("silences");
    assert!(listed.is_empty(), "expired: {listed:?}");
    app.stop().await;
}

fn clock_ms(clock: &ManualClock) -> i64 {
    use scalebot::clock::Clock;
    clock.now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_incident_controllers_silence_and_bad_durations_are_refused() {
    let clock = Arc::new(ManualClock::at(start_time()));
    let app = app_with_clock(clock.clone(), |_| {}).await;
    let store = app.engine.store();

    // A viewer (in no role) is refused in the ack, which only they see.
    let ack = app
        .command("silence persona-* 1h deploy", VIEWER, OPS_CHANNEL)
        .await;
    assert_eq!(ack["response_type"], "ephemeral", "{ack}");
    assert_eq!(
        ack["text"].as_str(),
        Some(
            "🚫 Only people in role `responders` or in role `operators` can silence or unsilence \
             alarms. Nothing was changed."
        ),
        "{ack}"
    );
    let refused: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|a| a.actor == VIEWER && a.outcome == "refused")
        .map(|a| a.command)
        .collect();
    assert_eq!(refused, ["silence persona-* 1h deploy"]);

    // Durations out of bounds or garbled: a sentence each, nothing stored.
    for (duration, says) in [
        ("0m", "silences nothing"),
        ("8d", "at most 7 days"),
        ("soon", "is not a duration"),
    ] {
        let command = format!("silence persona-api {duration} deploy");
        app.command(&command, OPERATOR, OPS_CHANNEL).await;
        assert_eq!(app.finished_outcome(&command).await, "refused", "{command}");
        let told = wait_post(&app, OPS_CHANNEL, says).await;
        assert!(message_text(&told).contains(duration), "{told}");
    }
    // A broken pattern too.
    app.command("silence fn-[0-9 1h deploy", OPERATOR, OPS_CHANNEL)
        .await;
    assert_eq!(
        app.finished_outcome("silence fn-[0-9 1h deploy").await,
        "refused"
    );
    wait_post(&app, OPS_CHANNEL, "is not a name pattern").await;
    let now = clock_ms(&clock);
    assert!(store.active_silences(now).await.expect("read").is_empty());
    // The viewer's refusal stored nothing either, and nothing was said in
    // the incident channel.
    assert_eq!(posts_with(&app, INCIDENTS, "silenced"), 0);

    // `/scale help silence` explains it.
    let help = app.command("help silence", VIEWER, OPS_CHANNEL).await;
    let help = help.to_string();
    for words in ["/scale silence", "at most 7 days", "digest", "unsilence"] {
        assert!(help.contains(words), "{words} in {help}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_are_listed_and_unsilence_ends_one_at_once() {
    let clock = Arc::new(ManualClock::at(start_time()));
    let app = app_with_clock(clock.clone(), |s: &mut SettingsFile| {
        s.silences.windows = vec![MaintenanceWindow {
            name: "Saturday load test".into(),
            pattern: Glob::parse("persona-*").expect("a pattern"),
            reason: "weekly".into(),
            when: WindowTime::Weekly {
                days: vec![chrono::Weekday::Sat],
                from: chrono::NaiveTime::from_hms_opt(22, 0, 0).expect("time"),
                until: chrono::NaiveTime::from_hms_opt(2, 0, 0).expect("time"),
            },
        }];
    })
    .await;
    app.command(
        "silence un-fn 1d noisy until the fix ships",
        OPERATOR,
        INCIDENTS,
    )
    .await;
    app.wait_incident_post("noisy until the fix ships").await;
    assert_eq!(
        fire(&app, "un-fn-errors", "ALARM", "un-fn").await,
        "silenced"
    );

    // Any reader may list them: who, what, until, why, and the windows.
    app.command("silences", VIEWER, OPS_CHANNEL).await;
    let list = wait_post(&app, OPS_CHANNEL, "Silences in force: 1").await;
    let text = message_text(&list);
    let id = app
        .engine
        .store()
        .active_silences(clock_ms(&clock))
        .await
        .expect("read")[0]
        .id
        .clone();
    for part in [
        id.as_str(),
        "un-fn",
        "<@U0OPS>",
        "noisy until the fix ships",
        "Saturday load test",
        "every Sat 22:00–02:00",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }

    // A viewer cannot end it; an operator can, and the alarm opens again.
    let ack = app
        .command(&format!("unsilence {id}"), VIEWER, OPS_CHANNEL)
        .await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("can silence or unsilence"),
        "{ack}"
    );
    app.command(
        &format!("unsilence {}", id.to_lowercase()),
        OPERATOR,
        OPS_CHANNEL,
    )
    .await;
    wait_post(&app, OPS_CHANNEL, &format!("Silence `{id}` ended by")).await;
    assert_eq!(fire(&app, "un-fn-errors", "ALARM", "un-fn").await, "alarm");
    app.wait_incident_post("ALARM: un-fn-errors").await;
    // Ending it twice is refused with a sentence.
    let again = format!("unsilence {id}");
    app.command(&again, OPERATOR, OPS_CHANNEL).await;
    assert_eq!(app.finished_outcome(&again).await, "refused");
    wait_post(&app, OPS_CHANNEL, "no silence").await;
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a.command == format!("unsilence {}", id.to_lowercase())
                && a.actor == OPERATOR
                && a.outcome == "ok"),
        "the unsilence is audited: {audit:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_silences_during_its_stretch_only() {
    let t0 = start_time();
    let clock = Arc::new(ManualClock::at(t0));
    let (start, end) = (
        t0 + chrono::Duration::hours(1),
        t0 + chrono::Duration::hours(2),
    );
    let app = app_with_clock(clock.clone(), move |s: &mut SettingsFile| {
        s.silences.windows = vec![MaintenanceWindow {
            name: "db upgrade".into(),
            pattern: Glob::parse("win-fn").expect("a pattern"),
            reason: "planned".into(),
            when: WindowTime::Once { start, end },
        }];
    })
    .await;
    assert_eq!(fire(&app, "win-before", "ALARM", "win-fn").await, "alarm");
    app.wait_incident_post("ALARM: win-before").await;

    clock.set(start + chrono::Duration::minutes(30));
    assert_eq!(
        fire(&app, "win-during", "ALARM", "win-fn").await,
        "silenced"
    );
    // Not the window's function: not silenced.
    assert_eq!(fire(&app, "win-other", "ALARM", "other-fn").await, "alarm");
    app.wait_incident_post("ALARM: win-other").await;
    // The incident opened before the window still recovers during it.
    assert_eq!(fire(&app, "win-before", "OK", "win-fn").await, "alarm");
    app.wait_incident_post("`win-before` is OK again").await;

    clock.set(end + chrono::Duration::minutes(1));
    assert_eq!(fire(&app, "win-during", "ALARM", "win-fn").await, "alarm");
    app.wait_incident_post("ALARM: win-during").await;
    // The digest names the window.
    let digest = app.wait_incident_post("Silenced alarms").await;
    assert!(
        message_text(&digest).contains("window db upgrade"),
        "{digest}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_made_through_one_replica_holds_on_another_and_one_posts_the_digest() {
    // Two replicas on one PostgreSQL schema, as several replicas run.
    let url = crate::store::postgres_url().await;
    let t0 = start_time();
    let clock = Arc::new(ManualClock::at(t0));
    let replica = |clock: Arc<ManualClock>, url: String| {
        let mut opts = sns_options(|_| {}, Some(url));
        opts.clock = Some(clock);
        spawn_app(opts)
    };
    let first = replica(clock.clone(), url.clone()).await;
    let second = replica(clock.clone(), url).await;
    first
        .command("silence rep-* 30m failover drill", OPERATOR, INCIDENTS)
        .await;
    first.wait_incident_post("failover drill").await;
    // Delivered to the other replica, which has never seen the command.
    let id = format!("msg-{}", uuid::Uuid::new_v4());
    let body =
        SnsSigner::get().notification(TOPIC, &id, None, &alarm("rep-alarm", "ALARM", "x-fn"));
    assert_eq!(deliver(&second, &body, &[]).await.0, 200);
    assert_eq!(outcome_of(&second, &id).await, "silenced");
    assert_eq!(open_count(&second).await, 0);

    // The hour closes: both replicas sweep, one posts the digest.
    clock.set(t0 + chrono::Duration::minutes(56));
    let digests = |first: &TestApp, second: &TestApp| {
        posts_with(first, INCIDENTS, "Silenced alarms")
            + posts_with(second, INCIDENTS, "Silenced alarms")
    };
    for _ in 0..100 {
        if digests(&first, &second) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(digests(&first, &second), 1, "one digest between the two");
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_whose_replica_died_before_posting_goes_into_a_later_one() {
    use scalebot::store::{SilencedAlarm, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&scalebot::config::StoreSettings {
        url: format!("sqlite://{}", dir.path().join("digest.db").display()),
        max_connections: 2,
    })
    .await
    .expect("store");
    let hour = 3_600_000;
    let held = SilencedAlarm {
        message_id: "m-1".into(),
        alarm_name: "held-alarm".into(),
        state: "ALARM".into(),
        reason: "load test".into(),
        silenced_by: "silence S-1".into(),
        at_ms: 10 * hour + 5,
    };
    store.record_silenced(&held).await.expect("record");
    // A replica claims the 11:00 digest and dies before it posts.
    let taken = store
        .claim_silence_digest(11 * hour, 11 * hour)
        .await
        .expect("claim")
        .expect("the alarm is due");
    assert_eq!(taken.len(), 1);
    // While its lease holds, the alarm is its, not the next digest's.
    assert!(
        store
            .claim_silence_digest(12 * hour, 12 * hour)
            .await
            .expect("claim")
            .is_none()
    );
    sqlx::query("UPDATE silence_digests SET lease_ms = 1 WHERE slot_ms = $1")
        .bind(11 * hour)
        .execute(store.pool())
        .await
        .expect("the lease runs out");
    let again = store
        .claim_silence_digest(13 * hour, 13 * hour)
        .await
        .expect("claim")
        .expect("the abandoned digest's alarm is due again");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].alarm_name, "held-alarm");
}
