//! Escalation details and alarm storms through the real server: reminders
//! that an acknowledgement stops, the option that lets it stop the clock,
//! the Escalate button, root messages redrawn whole, joining by resource,
//! SNS messages stored before a crash processed after it, and a storm of
//! 2,000 notifications for 20 alarms under Slack rate limits.

use std::sync::Arc;
use std::time::Duration;

use scalebot::config::JoinBy;
use scalebot::settings_file::SettingsFile;
use scalebot::store::SnsRecord;

use crate::sns::{TOPIC, alarm, deliver, sns_options};
use crate::support::app::{INCIDENTS, TestApp, message_text, spawn_app};
use crate::support::sns::SnsSigner;

fn notification(id: &str, name: &str, state: &str, function: &str) -> serde_json::Value {
    SnsSigner::get().notification(TOPIC, id, None, &alarm(name, state, function))
}

/// Delivers a signed notification; the bot must answer 200.
async fn fire(app: &TestApp, body: &serde_json::Value) {
    assert_eq!(deliver(app, body, &[]).await.0, 200, "accepted: {body}");
}

async fn open_incident_id(app: &TestApp) -> String {
    app.engine.store().open_incidents().await.expect("open")[0]
        .id
        .clone()
}

/// The latest `chat.update` of the incident's root message.
async fn root_update(app: &TestApp, root_ts: &str, needle: &str) -> serde_json::Value {
    app.slack
        .wait_for(20, needle, |s| {
            s.latest_update(root_ts)
                .filter(|u| message_text(u).contains(needle))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_repeat_until_acknowledged_and_the_root_keeps_its_fields() {
    let app = spawn_app(sns_options(
        |s: &mut SettingsFile| {
            s.escalation.levels[0].remind_every_seconds = Some(1);
            s.escalation.levels[0].mention = vec!["U0ONCALL".into()];
            s.escalation.levels[0].escalate_after_seconds = Some(3600);
        },
        None,
    ))
    .await;
    fire(&app, &notification("rem-1", "rem-alarm", "ALARM", "rem-fn")).await;
    let root = app.wait_incident_post("ALARM: rem-alarm").await;
    let ts = root["_ts"].as_str().expect("root ts").to_owned();
    let reminder = app.wait_incident_post("Still unacknowledged").await;
    assert!(
        message_text(&reminder).contains("<@U0ONCALL>"),
        "{reminder}"
    );
    assert_eq!(reminder["thread_ts"], ts.as_str(), "in the thread");

    let id = open_incident_id(&app).await;
    assert_eq!(
        app.click("U0OPS", INCIDENTS, "incident.ack", &id).await,
        200
    );
    app.wait_incident_post("Acknowledged by <@U0OPS>").await;
    let redrawn = root_update(&app, &ts, "acknowledged").await;
    let text = message_text(&redrawn);
    // The alarm's own fields survive the redraw.
    assert!(text.contains("AWS/Lambda Throttles"), "metric kept: {text}");
    assert!(
        text.contains("console.aws.amazon.com"),
        "console link kept: {text}"
    );
    assert!(text.contains("Acknowledged"), "{text}");
    let buttons = redrawn["blocks"].to_string();
    assert!(
        !buttons.contains("incident.ack"),
        "no second ack: {buttons}"
    );
    for b in ["incident.escalate", "incident.resolve", "throttles rem-fn"] {
        assert!(buttons.contains(b), "{b} in {buttons}");
    }

    // No reminder after the acknowledgement, though the interval passed twice.
    let reminders = |app: &TestApp| {
        app.slack
            .posts(INCIDENTS)
            .iter()
            .filter(|p| message_text(p).contains("Still unacknowledged"))
            .count()
    };
    let before = reminders(&app);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(reminders(&app), before, "acknowledging stops reminders");
    // The clock still runs by default: the deadline is still set.
    let incident = app.engine.store().incident(&id).await.expect("read");
    assert_eq!(incident.expect("exists").state.as_str(), "acknowledged");

    // The Escalate button moves it up by hand and the root follows.
    assert_eq!(
        app.click("U0OPS", INCIDENTS, "incident.escalate", &id)
            .await,
        200
    );
    // By hand, so it names who, not how long.
    app.wait_incident_post("Escalated to L2 operations team by <@U0OPS>")
        .await;
    root_update(&app, &ts, "L2 operations team").await;

    assert_eq!(
        app.click("U0OPS", INCIDENTS, "incident.resolve", &id).await,
        200
    );
    let resolved = root_update(&app, &ts, "resolved").await;
    assert!(
        !resolved["blocks"].to_string().contains("incident."),
        "a resolved incident has no incident buttons: {resolved}"
    );
    assert!(message_text(&resolved).contains("AWS/Lambda Throttles"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_stops_the_clock_when_configured() {
    let app = spawn_app(sns_options(
        |s: &mut SettingsFile| {
            s.escalation.ack_stops_clock = true;
            s.escalation.levels[0].escalate_after_seconds = Some(2);
        },
        None,
    ))
    .await;
    fire(&app, &notification("clk-1", "clk-alarm", "ALARM", "clk-fn")).await;
    app.wait_incident_post("ALARM: clk-alarm").await;
    let id = open_incident_id(&app).await;
    app.command(&format!("incident {id} ack"), "U0OPS", "C0CLK")
        .await;
    app.wait_incident_post("Acknowledged by <@U0OPS>").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let incident = app
        .engine
        .store()
        .incident(&id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(incident.level, 1, "no escalation after the ack");
    assert!(
        !app.slack
            .posts(INCIDENTS)
            .iter()
            .any(|p| message_text(p).contains("Escalated")),
        "nothing escalated"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_on_one_function_join_one_incident_when_joining_by_resource() {
    let app = spawn_app(sns_options(
        |s: &mut SettingsFile| s.escalation.join_by = JoinBy::Resource,
        None,
    ))
    .await;
    let send = |id: &str, name: &str, state: &str| notification(id, name, state, "joined-fn");
    fire(&app, &send("j-1", "joined-throttles", "ALARM")).await;
    app.wait_incident_post("ALARM: joined-throttles").await;
    fire(&app, &send("j-2", "joined-errors", "ALARM")).await;
    app.wait_incident_post("`joined-errors` is in ALARM again")
        .await;
    assert_eq!(
        app.engine
            .store()
            .open_incidents()
            .await
            .expect("open")
            .len(),
        1,
        "one incident for the function"
    );
    // One alarm back to OK: the other still fires, so not recovered yet.
    fire(&app, &send("j-3", "joined-throttles", "OK")).await;
    let partial = app.wait_incident_post("still in ALARM").await;
    assert!(
        message_text(&partial).contains("`joined-errors`"),
        "{partial}"
    );
    assert_eq!(open_state(&app).await, "open");
    fire(&app, &send("j-4", "joined-errors", "OK")).await;
    app.wait_incident_post("`joined-errors` is OK again:").await;
    assert_eq!(open_state(&app).await, "recovered");
    app.stop().await;
}

async fn open_state(app: &TestApp) -> String {
    app.engine.store().open_incidents().await.expect("open")[0]
        .state
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stored_before_a_crash_is_processed_after_the_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("replay.db").display());
    let first = spawn_app(sns_options(|_| {}, Some(store.clone()))).await;
    // What the ingress stores before its 2xx, as if the process died right
    // after answering.
    let body = notification("replay-1", "replay-alarm", "ALARM", "replay-fn");
    let stored = first
        .engine
        .store()
        .record_sns(SnsRecord {
            message_id: "replay-1".into(),
            topic: TOPIC.into(),
            kind: "Notification".into(),
            body: body.to_string(),
            received_ms: chrono::Utc::now().timestamp_millis(),
        })
        .await
        .expect("stored");
    assert!(stored);
    first.stop().await;

    let second = spawn_app(sns_options(|_| {}, Some(store))).await;
    second.wait_incident_post("ALARM: replay-alarm").await;
    // SNS redelivering it changes nothing: the id is known.
    assert_eq!(
        deliver(&second, &body, &[]).await,
        (200, "duplicate\n".into())
    );
    // Marked processed once its diagnostics are posted.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !second
        .engine
        .store()
        .unprocessed_sns(10)
        .await
        .expect("read")
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never marked processed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        second
            .slack
            .posts(INCIDENTS)
            .iter()
            .filter(|p| message_text(p).contains("ALARM: replay-alarm"))
            .count(),
        1,
        "processed once"
    );
    second.stop().await;
}

/// "🚨 `a` fired 37 more times …" counts 37; "… is in ALARM again" counts 1.
fn repeats_in(text: &str) -> u64 {
    if let Some(rest) = text.split(" fired ").nth(1) {
        return rest
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
    }
    u64::from(text.contains("is in ALARM again"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_two_thousand_notifications_for_twenty_alarms() {
    let app = spawn_app(sns_options(
        |s: &mut SettingsFile| {
            s.escalation.coalesce_seconds = 2;
            s.slack.post_interval = std::time::Duration::from_millis(25);
            s.slack.post_burst = 3;
        },
        None,
    ))
    .await;
    app.slack.rate_limit("chat.postMessage", 4, 1);
    let mut bodies = Vec::new();
    for round in 0..100 {
        for a in 0..20 {
            bodies.push(notification(
                &format!("storm-{round}-{a}"),
                &format!("storm-alarm-{a}"),
                "ALARM",
                &format!("storm-fn-{a}"),
            ));
        }
    }
    let app = Arc::new(app);
    let mut statuses = Vec::new();
    for chunk in bodies.chunks(50) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|body| {
                let (app, body) = (app.clone(), body.clone());
                tokio::spawn(async move { deliver(&app, &body, &[]).await.0 })
            })
            .collect();
        for b in batch {
            statuses.push(b.await.expect("join"));
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every notification accepted"
    );
    assert_eq!(
        app.engine.store().sns_count().await.expect("count"),
        2000,
        "every notification stored"
    );
    // Every repeat is accounted for in the threads, coalesced.
    app.slack
        .wait_for(90, "1,980 repeats accounted for", |s| {
            let n: u64 = s
                .posts(INCIDENTS)
                .iter()
                .map(|p| repeats_in(&message_text(p)))
                .sum();
            (n == 1980).then_some(())
        })
        .await;
    let posts = app.slack.posts(INCIDENTS);
    let roots = posts
        .iter()
        .filter(|p| p["thread_ts"].is_null() && message_text(p).contains("ALARM: storm-alarm-"))
        .count();
    assert_eq!(roots, 20, "one incident per alarm");
    let repeat_posts = posts
        .iter()
        .filter(|p| repeats_in(&message_text(p)) > 0)
        .count();
    assert!(
        repeat_posts <= 20 * 10,
        "coalesced: {repeat_posts} replies for 1,980 repeats"
    );
    // Four 429s were answered; every root and every repeat is there, so
    // each was waited out and its post made after it.
    assert_eq!(app.slack.rate_limited("chat.postMessage").len(), 4);
    // Paced: never more than the burst plus one per interval in any second.
    let mut at: Vec<_> = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .chain(app.slack.calls("files.completeUploadExternal"))
        .filter(|c| c.args["channel"] == INCIDENTS || c.args["channel_id"] == INCIDENTS)
        .map(|c| c.at)
        .collect();
    at.sort();
    let mut start = 0;
    for end in 0..at.len() {
        while at[end] - at[start] > Duration::from_secs(1) {
            start += 1;
        }
        // The burst, one per 25 ms over a closed one-second window, and
        // the four posts retried after a 429 (which skip the queue).
        assert!(
            end - start < 3 + 41 + 4,
            "{} posts within one second",
            end - start + 1
        );
    }
    assert_eq!(
        app.engine
            .store()
            .open_incidents()
            .await
            .expect("open")
            .len(),
        20
    );
    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("the app is still shared"),
    }
}
