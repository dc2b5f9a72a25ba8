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

/// What the ingress stores before its 2xx, written straight into the
/// store as if the process had died right after answering.
async fn store_unprocessed(
    url: &str,
    id: &str,
    body: &serde_json::Value,
) -> scalebot::store::Store {
    let store = scalebot::store::Store::connect(&scalebot::config::StoreSettings {
        url: url.to_owned(),
        max_connections: 2,
    })
    .await
    .expect("store");
    let message = body["Message"].as_str().expect("message");
    let (key, changed) = scalebot::alarm::Alarm::order_of(message).expect("an alarm");
    let stored = store
        .record_sns(SnsRecord {
            message_id: id.into(),
            topic: TOPIC.into(),
            kind: "Notification".into(),
            body: body.to_string(),
            received_ms: chrono::Utc::now().timestamp_millis(),
            alarm_key: Some(key),
            changed_ms: changed,
        })
        .await
        .expect("stored");
    assert!(stored);
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stored_before_a_crash_is_processed_after_the_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("replay.db").display());
    let body = notification("replay-1", "replay-alarm", "ALARM", "replay-fn");
    store_unprocessed(&store, "replay-1", &body).await;

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

/// The row's outcome, once a worker finished it.
async fn outcome_of(app: &TestApp, id: &str) -> (String, String, i64) {
    use sqlx::Row;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = sqlx::query(
            "SELECT outcome, processed_by, attempts FROM sns_messages WHERE message_id = $1 AND processed_ms IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(app.engine.store().pool())
        .await
        .expect("read");
        if let Some(r) = row {
            return (
                r.try_get("outcome").expect("outcome"),
                r.try_get("processed_by").expect("by"),
                r.try_get("attempts").expect("attempts"),
            );
        }
        assert!(std::time::Instant::now() < deadline, "{id} never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_alarm_that_has_since_recovered_opens_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("order.db").display());
    // Both stored while no replica ran; the OK is the alarm's state now.
    let fired = notification("order-1", "order-alarm", "ALARM", "order-fn");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let recovered = notification("order-2", "order-alarm", "OK", "order-fn");
    store_unprocessed(&url, "order-1", &fired).await;
    store_unprocessed(&url, "order-2", &recovered).await;
    let app = spawn_app(sns_options(|_| {}, Some(url))).await;
    let (outcome, by, _) = outcome_of(&app, "order-1").await;
    assert!(outcome.starts_with("superseded"), "{outcome}");
    assert_eq!(by, app.engine.replica());
    assert_eq!(outcome_of(&app, "order-2").await.0, "alarm");
    app.wait_incident_post("`order-alarm` is OK").await;
    assert!(
        app.engine
            .store()
            .open_incidents()
            .await
            .expect("open")
            .is_empty(),
        "no phantom incident"
    );
    // A late copy of the old ALARM, delivered after the OK: history only.
    assert_eq!(
        deliver(
            &app,
            &notification("order-3", "order-alarm", "ALARM", "order-fn"),
            &[]
        )
        .await
        .0,
        200
    );
    assert_eq!(outcome_of(&app, "order-3").await.0, "alarm");
    let late = SnsSigner::get().notification(
        TOPIC,
        "order-4",
        None,
        fired["Message"].as_str().expect("message"),
    );
    assert_eq!(deliver(&app, &late, &[]).await.0, 200);
    assert!(outcome_of(&app, "order-4").await.0.starts_with("stale"));
    let open = app.engine.store().open_incidents().await.expect("open");
    assert_eq!(open.len(), 1, "the newer ALARM opened one incident");
    let events = app
        .engine
        .store()
        .incident_events(&open[0].id)
        .await
        .expect("events");
    assert!(
        events.iter().any(|e| e.kind == "stale_state"),
        "the late message is in the timeline: {events:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_held_by_a_dead_replica_is_taken_over_when_its_lease_runs_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("lease.db").display());
    let body = notification("lease-1", "lease-alarm", "ALARM", "lease-fn");
    let store = store_unprocessed(&url, "lease-1", &body).await;
    let now = chrono::Utc::now().timestamp_millis();
    let claimed = store
        .claim_inbox("dead-replica", now, now + 2_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let app = spawn_app(sns_options(|_| {}, Some(url))).await;
    let (outcome, by, attempts) = outcome_of(&app, "lease-1").await;
    assert_eq!(outcome, "alarm");
    assert_eq!(by, app.engine.replica());
    assert_eq!(attempts, 2, "claimed by the dead replica, then by this one");
    let processed: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT processed_ms FROM sns_messages WHERE message_id = 'lease-1'")
            .fetch_one(app.engine.store().pool())
            .await
            .expect("row"),
        "processed_ms",
    )
    .expect("processed_ms");
    assert!(
        processed >= now + 2_000,
        "taken over only after the lease ran out ({} ms early)",
        now + 2_000 - processed
    );
    app.wait_incident_post("ALARM: lease-alarm").await;
    app.stop().await;
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
    // Every repeat is accounted for: in the threads, coalesced, or, when
    // a newer state change of its alarm was stored or applied before it
    // (the deliveries race), as history that opens and posts nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let posted: u64 = app
            .slack
            .posts(INCIDENTS)
            .iter()
            .map(|p| repeats_in(&message_text(p)))
            .sum();
        let stale: i64 = sqlx::Row::try_get(
            &sqlx::query(
                "SELECT COUNT(*) AS n FROM sns_messages \
                 WHERE outcome LIKE 'stale%' OR outcome LIKE 'superseded%'",
            )
            .fetch_one(app.engine.store().pool())
            .await
            .expect("count"),
            "n",
        )
        .expect("n");
        if posted + stale as u64 == 1980 {
            eprintln!("repeats: {posted} posted, {stale} older than a stored state change");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "1,980 repeats not accounted for: {posted} posted, {stale} stale"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_whose_post_fails_is_announced_on_the_next_sweep() {
    let app = spawn_app(sns_options(
        |s: &mut SettingsFile| {
            s.escalation.levels[0].escalate_after_seconds = Some(5);
            s.escalation.levels[1].mention = vec!["S0OPSTEAM".into()];
        },
        None,
    ))
    .await;
    fire(
        &app,
        &notification("esc-retry-1", "esc-retry-alarm", "ALARM", "no-such-fn"),
    )
    .await;
    app.wait_incident_post("L1 diagnostics").await;
    assert!(
        app.engine.store().open_incidents().await.expect("open")[0].level == 1,
        "diagnostics came before the escalation"
    );
    // The next post, the escalation, is refused with a wait longer than
    // the bot accepts: the call fails.
    app.slack.rate_limit("chat.postMessage", 1, 1_000);
    let l2 = app
        .wait_incident_post("Escalated to L2 operations team")
        .await;
    assert!(message_text(&l2).contains("<!subteam^S0OPSTEAM>"), "{l2}");
    assert_eq!(
        app.slack.rate_limited("chat.postMessage").len(),
        1,
        "the first attempt was refused"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let announced = app
        .slack
        .posts(INCIDENTS)
        .iter()
        .filter(|p| message_text(p).contains("Escalated to L2"))
        .count();
    assert_eq!(announced, 1, "announced once, after the retry");
    let open = app.engine.store().open_incidents().await.expect("open");
    assert_eq!(open[0].level, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_whose_root_post_failed_gets_it_on_the_retry() {
    let app = spawn_app(sns_options(|_| {}, None)).await;
    // The root post is refused with a wait longer than the bot accepts.
    app.slack.rate_limit("chat.postMessage", 1, 1_000);
    fire(
        &app,
        &notification("root-retry-1", "root-retry-alarm", "ALARM", "no-such-fn"),
    )
    .await;
    let root = app.wait_incident_post("ALARM: root-retry-alarm").await;
    app.wait_incident_post("L1 diagnostics").await;
    // The message was done once its incident was decided; the root post
    // is owed work of its own, retried until it went through.
    let (outcome, _, attempts) = outcome_of(&app, "root-retry-1").await;
    assert_eq!(outcome, "alarm");
    assert_eq!(attempts, 1, "the message is not held by the chat's refusal");
    assert!(
        app.slack.rate_limited("chat.postMessage").len() == 1,
        "the refused root post was the first try"
    );
    let open = app.engine.store().open_incidents().await.expect("open");
    assert_eq!(open.len(), 1, "one incident, not a second one on the retry");
    assert_eq!(open[0].root_message.as_deref(), root["_ts"].as_str());
    let roots = app
        .slack
        .posts(INCIDENTS)
        .iter()
        .filter(|p| message_text(p).contains("ALARM: root-retry-alarm") && p["thread_ts"].is_null())
        .count();
    assert_eq!(roots, 1, "one root message");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_a_due_message_waits_for_a_worker() {
    // No SNS topic allowed, so no worker: a stored row waits for nobody.
    let app = spawn_app(crate::support::app::Options::default()).await;
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
    let body = notification("stall-1", "stall-alarm", "ALARM", "stall-fn");
    app.engine
        .store()
        .record_sns(SnsRecord {
            message_id: "stall-1".into(),
            topic: TOPIC.into(),
            kind: "Notification".into(),
            body: body.to_string(),
            received_ms: chrono::Utc::now().timestamp_millis(),
            alarm_key: None,
            changed_ms: None,
        })
        .await
        .expect("stored");
    // Just stored: due, but not waiting long yet.
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
    sqlx::query("UPDATE sns_messages SET next_attempt_ms = next_attempt_ms - 120000")
        .execute(app.engine.store().pool())
        .await
        .expect("aged");
    let stalled = app.get("/readyz").await;
    assert_eq!(stalled.status().as_u16(), 503);
    let text = stalled.text().await.expect("text");
    assert!(text.contains("work queue stalled"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_counted_before_a_restart_are_posted_once_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("repeats.db").display());
    let options = |store: &String| {
        sns_options(
            |s: &mut SettingsFile| s.escalation.coalesce_seconds = 3,
            Some(store.clone()),
        )
    };
    let first = spawn_app(options(&store)).await;
    fire(
        &first,
        &notification("rep-0", "rep-alarm", "ALARM", "rep-fn"),
    )
    .await;
    first.wait_incident_post("ALARM: rep-alarm").await;
    for i in 1..=3 {
        let id = format!("rep-{i}");
        fire(&first, &notification(&id, "rep-alarm", "ALARM", "rep-fn")).await;
        assert_eq!(outcome_of(&first, &id).await.0, "alarm");
    }
    let said = |app: &TestApp| {
        app.slack
            .posts(INCIDENTS)
            .iter()
            .filter(|p| message_text(p).contains("fired 3 more times"))
            .count()
    };
    // Stopped inside the coalescing window: the count is in the store.
    assert_eq!(said(&first), 0, "the window had not closed");
    first.stop().await;

    let second = spawn_app(options(&store)).await;
    second.wait_incident_post("fired 3 more times").await;
    // Posted once, and the window is gone from the store.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(said(&second), 1);
    let left: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM alarm_repeats")
            .fetch_one(second.engine.store().pool())
            .await
            .expect("count"),
        "n",
    )
    .expect("n");
    assert_eq!(left, 0, "posted windows are deleted");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_left_owed_by_a_stopped_replica_is_finished_by_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("openings.db").display());
    let first = spawn_app(sns_options(|_| {}, Some(store.clone()))).await;
    // Every post refused for longer than the bot waits: the incident is
    // decided, its root post is owed.
    first.slack.rate_limit("chat.postMessage", 1_000, 1_000);
    fire(
        &first,
        &notification("owed-1", "owed-alarm", "ALARM", "owed-fn"),
    )
    .await;
    assert_eq!(outcome_of(&first, "owed-1").await.0, "alarm");
    let open = first.engine.store().open_incidents().await.expect("open");
    assert_eq!(open.len(), 1, "decided");
    assert!(open[0].root_message.is_none(), "its root post is owed");
    first.stop().await;

    let second = spawn_app(sns_options(|_| {}, Some(store))).await;
    let root = second.wait_incident_post("ALARM: owed-alarm").await;
    second.wait_incident_post("L1 diagnostics").await;
    let open = second.engine.store().open_incidents().await.expect("open");
    assert_eq!(open.len(), 1, "the same incident, not a second");
    assert_eq!(open[0].root_message.as_deref(), root["_ts"].as_str());
    second.stop().await;
}
