//! `POST /sns` through the real server: messages signed as AWS signs them
//! (tests/support/sns.rs, certificate served over HTTPS by a test CA the bot
//! is configured to trust), alarms opening incidents with L1 diagnostics,
//! redeliveries, OK, subscriptions, and a corpus of bad messages.

use chrono::Utc;
use scalebot::settings_file::SettingsFile;
use serde_json::json;

use crate::support::app::{INCIDENTS, Options, TestApp, message_text, spawn_app};
use crate::support::moto;
use crate::support::sns::SnsSigner;

pub(crate) const TOPIC: &str = "arn:aws:sns:eu-central-1:123456789012:chatops-alarms";

/// Options for an app that trusts the test signer, plus `extra` settings.
pub(crate) fn sns_options(
    extra: impl FnOnce(&mut SettingsFile) + Send + 'static,
    store_url: Option<String>,
) -> Options {
    let signer = SnsSigner::get();
    let ca = std::env::temp_dir().join(format!("scalebot-test-ca-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&ca, &signer.ca_pem).expect("write CA");
    let host = signer.host.clone();
    Options {
        store_url,
        tweak: Some(Box::new(move |s: &mut SettingsFile| {
            s.sns.allowed_topics = vec![TOPIC.into()];
            s.sns.extra_cert_hosts = vec![host];
            s.sns.extra_ca_pem_file = Some(ca);
            s.roles.insert("operators".into(), vec!["U0OPS".into()]);
            extra(s);
        })),
        ..Options::default()
    }
}

async fn app() -> TestApp {
    spawn_app(sns_options(|_| {}, None)).await
}

pub(crate) fn alarm(name: &str, state: &str, function: &str) -> String {
    json!({
        "AlarmName": name,
        "AlarmDescription": "Lambda throttles above 10 per minute",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2025-05-02T08:15:03.112+0000",
        "NewStateValue": state,
        "NewStateReason": format!("Threshold Crossed: 1 out of the last 1 datapoints [50.0] was greater than the threshold (10.0) -> {state}"),
        "StateChangeTime": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "Region": "EU (Frankfurt)",
        "AlarmArn": format!("arn:aws:cloudwatch:eu-central-1:123456789012:alarm:{name}"),
        "OldStateValue": "OK",
        "OKActions": [TOPIC],
        "AlarmActions": [TOPIC],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "Throttles", "Namespace": "AWS/Lambda", "StatisticType": "Statistic",
            "Statistic": "SUM", "Unit": null,
            "Dimensions": [{"value": function, "name": "FunctionName"}],
            "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanThreshold", "Threshold": 10.0,
            "TreatMissingData": "- TreatMissingData:                    missing",
            "EvaluateLowSampleCountPercentile": ""
        }
    })
    .to_string()
}

pub(crate) async fn deliver(
    app: &TestApp,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let kind = body["Type"].as_str().unwrap_or("Notification").to_owned();
    let mut req = app
        .http
        .post(format!("{}/sns", app.base))
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-topic-arn", TOPIC);
    if !headers.iter().any(|(k, _)| *k == "x-amz-sns-message-type") {
        req = req.header("x-amz-sns-message-type", kind);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body.to_string()).send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_opens_an_incident_with_diagnostics_and_recovers() {
    let aws = moto::url();
    moto::create_function(&aws, "sns-fn", Some(50)).await;
    moto::seed_day_with_throttling(&aws, "sns-fn", Utc::now(), 100.0).await;
    let app = app().await;
    let signer = SnsSigner::get();

    let msg = signer.notification(
        TOPIC,
        "msg-alarm-1",
        Some("ALARM: \"sns-fn-throttles\" in EU (Frankfurt)"),
        &alarm("sns-fn-throttles", "ALARM", "sns-fn"),
    );
    assert_eq!(deliver(&app, &msg, &[]).await, (200, "stored\n".into()));
    let root = app.wait_incident_post("ALARM: sns-fn-throttles").await;
    let text = message_text(&root);
    assert!(text.contains("L1 automated response"), "{text}");
    assert!(
        text.contains("console.aws.amazon.com/cloudwatch"),
        "console link: {text}"
    );
    let blocks = root["blocks"].to_string();
    for b in [
        "incident.ack",
        "incident.resolve",
        "throttles sns-fn",
        "concurrency sns-fn auto",
    ] {
        assert!(blocks.contains(b), "button {b}: {blocks}");
    }
    let ts = root["_ts"].as_str().expect("root ts").to_owned();
    let diag = app
        .slack
        .wait_for(30, "L1 diagnostics in the thread", |s| {
            s.thread(INCIDENTS, &ts)
                .into_iter()
                .find(|p| message_text(p).contains("L1 diagnostics"))
        })
        .await;
    assert!(message_text(&diag).contains("*200 throttles*"), "{diag}");
    app.slack
        .wait_for(30, "the chart in the thread", |s| {
            s.uploads()
                .into_iter()
                .find(|u| u.thread_ts.as_deref() == Some(ts.as_str()))
        })
        .await;

    let chart = app
        .slack
        .wait_for(30, "the alarm's metric chart", |s| {
            s.uploads().into_iter().find(|u| {
                u.filename.starts_with("alarm-") && u.thread_ts.as_deref() == Some(ts.as_str())
            })
        })
        .await;
    assert_eq!(crate::support::app::decode_png(&chart.bytes), (1000, 500));
    assert!(
        chart
            .title
            .unwrap_or_default()
            .contains("Throttles (Sum, last 3 h)")
    );

    // A runbook button on the incident plans into the same incident.
    let raise = root["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["text"]["text"] == "Raise reserved concurrency")
        .expect("the concurrency button");
    let value = raise["value"].as_str().expect("value").to_owned();
    app.click("U0OPS", INCIDENTS, "run", &value).await;
    let (_, plan) = app.wait_plan("concurrency sns-fn auto").await;
    assert_eq!(
        plan["thread_ts"].as_str(),
        Some(ts.as_str()),
        "the plan joins the alarm's incident"
    );

    // SNS redelivers the same message: nothing happens twice.
    assert_eq!(deliver(&app, &msg, &[]).await, (200, "duplicate\n".into()));
    // A new ALARM for the same alarm joins the incident.
    let again = signer.notification(
        TOPIC,
        "msg-alarm-2",
        None,
        &alarm("sns-fn-throttles", "ALARM", "sns-fn"),
    );
    assert_eq!(deliver(&app, &again, &[]).await.0, 200);
    app.wait_incident_post("is in ALARM again").await;
    let roots = app
        .slack
        .posts(INCIDENTS)
        .into_iter()
        .filter(|p| p["thread_ts"].is_null() && message_text(p).contains("ALARM: sns-fn-throttles"))
        .count();
    assert_eq!(roots, 1, "one incident for one alarm");

    let ok = signer.notification(
        TOPIC,
        "msg-ok-1",
        None,
        &alarm("sns-fn-throttles", "OK", "sns-fn"),
    );
    assert_eq!(deliver(&app, &ok, &[]).await.0, 200);
    app.wait_incident_post("is OK again").await;
    let update = app
        .slack
        .wait_for(10, "the root updated", |s| {
            s.latest_update(&ts)
                .filter(|u| message_text(u).contains("recovered"))
        })
        .await;
    assert!(message_text(&update).contains("recovered"));

    app.click(
        "U0OPS",
        INCIDENTS,
        "incident.resolve",
        &app.engine.store().open_incidents().await.expect("open")[0]
            .id
            .clone(),
    )
    .await;
    app.wait_incident_post("Resolved by").await;
    assert!(
        app.engine
            .store()
            .open_incidents()
            .await
            .expect("open")
            .is_empty()
    );

    // INSUFFICIENT_DATA for an alarm with no incident is shown, not dropped.
    let nodata = signer.notification(
        TOPIC,
        "msg-nodata-1",
        None,
        &alarm("quiet-alarm", "INSUFFICIENT_DATA", "sns-fn"),
    );
    assert_eq!(deliver(&app, &nodata, &[]).await.0, 200);
    app.wait_incident_post("`quiet-alarm` is INSUFFICIENT_DATA")
        .await;
    assert_eq!(app.engine.store().sns_count().await.expect("count"), 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_is_confirmed_and_announced() {
    let app = app().await;
    let signer = SnsSigner::get();
    let token = format!("token-{}", uuid::Uuid::new_v4().simple());
    let msg = signer.subscription_confirmation(TOPIC, &token);
    assert_eq!(deliver(&app, &msg, &[]).await.0, 200);
    app.wait_incident_post("Subscribed to SNS topic").await;
    assert!(signer.confirmed_tokens().contains(&token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_4xx_and_change_nothing() {
    let app = app().await;
    let signer = SnsSigner::get();
    let good = signer.notification(
        TOPIC,
        "msg-bad-0",
        None,
        &alarm("bad-alarm", "ALARM", "nope"),
    );

    let mut tampered = good.clone();
    tampered["Message"] = json!(alarm("bad-alarm", "OK", "nope"));
    assert_eq!(
        deliver(&app, &tampered, &[]).await.0,
        401,
        "tampered Message"
    );

    let mut wrong_sig = good.clone();
    wrong_sig["Signature"] = json!("AAAA");
    assert_eq!(
        deliver(&app, &wrong_sig, &[]).await.0,
        401,
        "wrong signature"
    );

    let other_topic = signer.notification(
        "arn:aws:sns:eu-central-1:123456789012:other",
        "msg-bad-1",
        None,
        "{}",
    );
    assert_eq!(
        deliver(&app, &other_topic, &[]).await.0,
        403,
        "topic not allowed"
    );

    for url in [
        signer.cert_url.replace("https://", "http://"),
        "https://sns.eu-central-1.amazonaws.com.evil.example/cert.pem".to_owned(),
        "https://evil.example/SimpleNotificationService.pem".to_owned(),
    ] {
        let mut m = good.clone();
        m["SigningCertURL"] = json!(url);
        signer.sign_raw(&mut m);
        assert_eq!(deliver(&app, &m, &[]).await.0, 400, "cert URL {url}");
    }

    let mut unknown = good.clone();
    unknown["Type"] = json!("Surprise");
    assert_eq!(deliver(&app, &unknown, &[]).await.0, 400, "unknown type");

    let truncated = good.to_string();
    let resp = app
        .http
        .post(format!("{}/sns", app.base))
        .body(truncated[..truncated.len() / 2].to_owned())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 400, "truncated JSON");

    let (status, text) = deliver(
        &app,
        &json!({"AlarmName": "x"}),
        &[("x-amz-sns-rawdelivery", "true")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("RawMessageDelivery"), "{text}");

    let (status, _) = deliver(
        &app,
        &good,
        &[("x-amz-sns-message-type", "SubscriptionConfirmation")],
    )
    .await;
    assert_eq!(status, 400, "header and body disagree");

    // Each refusal counted once, under its reason.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for (outcome, n) in [
        ("bad_signature", 2),
        ("topic_not_allowed", 1),
        ("invalid", 6),
        ("raw_delivery", 1),
    ] {
        let series = format!(r#"scalebot_requests_total{{route="/sns",outcome="{outcome}"}} {n}"#);
        assert!(metrics.contains(&series), "{series} in:\n{metrics}");
    }
    assert!(
        metrics.contains(r#"scalebot_ack_seconds_count{route="/sns"} 10"#),
        "{metrics}"
    );

    assert_eq!(
        app.engine.store().sns_count().await.expect("count"),
        0,
        "nothing stored"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.slack.posts(INCIDENTS).is_empty(), "nothing posted");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolved_alarm_escalates_on_time_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("escalation.db").display());
    let signer = SnsSigner::get();
    let levels = |s: &mut SettingsFile| {
        s.escalation.levels[0].escalate_after_seconds = Some(1);
        s.escalation.levels[1].escalate_after_seconds = Some(4);
        s.escalation.levels[1].mention = vec!["S0OPSTEAM".into()];
        s.escalation.levels[2].escalate_after_seconds = Some(2);
        s.escalation.levels[2].mention = vec!["U0ENGINEER".into()];
        // The ack at L3 below must not stop the climb to L4.
        s.escalation.ack_stops_clock = false;
    };
    let opts = |store: &str| sns_options(levels, Some(store.to_owned()));

    let first = spawn_app(opts(&store)).await;
    let msg = signer.notification(
        TOPIC,
        "msg-esc-1",
        None,
        &alarm("escalating-alarm", "ALARM", "no-such-fn"),
    );
    assert_eq!(deliver(&first, &msg, &[]).await.0, 200);
    let l2 = first
        .wait_incident_post("Escalated to L2 operations team")
        .await;
    assert!(message_text(&l2).contains("<!subteam^S0OPSTEAM>"), "{l2}");
    first.stop().await;

    // A new process on the same store picks the deadline up.
    let second = spawn_app(opts(&store)).await;
    let l3 = second
        .wait_incident_post("Escalated to L3 engineering team")
        .await;
    assert!(message_text(&l3).contains("<@U0ENGINEER>"), "{l3}");
    assert!(
        !second
            .slack
            .posts(INCIDENTS)
            .iter()
            .any(|p| message_text(p).contains("Escalated to L2")),
        "nothing posted twice"
    );
    second.wait_incident_post("Dedicated channel").await;
    let created = second.slack.calls("conversations.create");
    assert_eq!(created.len(), 1);
    let channel_name = created[0].args["name"].as_str().unwrap_or_default();
    assert!(
        channel_name.starts_with("inc-") && !channel_name.starts_with("inc-inc-"),
        "the incident's id, once: {:?}",
        created[0].args
    );
    // In the incident's own channel the id can be left out.
    let own = format!(
        "C0DED{}",
        created[0].args["name"].as_str().unwrap_or_default().len()
    );
    second.command("incident ack", "U0OPS", &own).await;
    second.wait_incident_post("Acknowledged by <@U0OPS>").await;
    let invited = second.slack.calls("conversations.invite");
    assert!(
        invited[0].args["users"].to_string().contains("U0ENGINEER"),
        "{:?}",
        invited[0].args
    );
    let l4 = second
        .wait_incident_post("Executive notification required")
        .await;
    assert_eq!(
        l4["reply_broadcast"], true,
        "the L4 reply reaches the channel: {l4}"
    );
    assert!(!l4["thread_ts"].is_null(), "and stays in the thread: {l4}");
    let incident = &second.engine.store().open_incidents().await.expect("open")[0];
    assert_eq!(incident.level, 4);
    let kinds: Vec<String> = second
        .engine
        .store()
        .incident_events(&incident.id)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == "escalated")
        .map(|e| e.body)
        .collect();
    assert_eq!(kinds.len(), 3, "L2, L3, L4 once each: {kinds:?}");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_commands_and_the_post_mortem_timeline() {
    let app = app().await;
    let signer = SnsSigner::get();
    let msg = signer.notification(
        TOPIC,
        "msg-cmd-1",
        None,
        &alarm("cmd-alarm", "ALARM", "cmd-fn"),
    );
    assert_eq!(deliver(&app, &msg, &[]).await.0, 200);
    app.wait_incident_post("ALARM: cmd-alarm").await;
    let id = app.engine.store().open_incidents().await.expect("open")[0]
        .id
        .clone();

    app.command("incidents", "U0OPS", "C0CMD").await;
    let list = app
        .slack
        .wait_for(20, "the list", |s| {
            s.posts("C0CMD")
                .into_iter()
                .find(|p| message_text(p).contains("Open incidents"))
        })
        .await;
    assert!(message_text(&list).contains(&id), "{list}");

    app.command(
        &format!("incident {id} note checking the last deploy"),
        "U0OPS",
        "C0CMD",
    )
    .await;
    app.wait_incident_post("checking the last deploy").await;
    // A note is the user's words: it cannot mention the channel, a group
    // or a person, on Slack's wire either.
    app.command(
        &format!("incident {id} note <!channel> <@U0CEO> *deploy* rolled back"),
        "U0OPS",
        "C0CMD",
    )
    .await;
    let note = app.wait_incident_post("rolled back").await;
    let text = message_text(&note);
    assert!(
        text.contains("&lt;!channel&gt; &lt;@U0CEO&gt; *deploy* rolled back"),
        "{text}"
    );
    assert!(
        !text.contains("<!channel>") && !text.contains("<@U0CEO>"),
        "{text}"
    );
    app.command(
        &format!("incident {} ack", id.to_lowercase()),
        "U0OPS",
        "C0CMD",
    )
    .await;
    app.wait_incident_post("Acknowledged by <@U0OPS>").await;
    app.command(&format!("incident {id} escalate"), "U0OPS", "C0CMD")
        .await;
    app.wait_incident_post("Escalated to L2 operations team")
        .await;
    app.command(&format!("incident {id} timeline"), "U0OPS", "C0CMD")
        .await;
    let file = app
        .slack
        .wait_for(20, "the post-mortem", |s| {
            s.uploads()
                .into_iter()
                .find(|u| u.filename == format!("postmortem-{id}.md"))
        })
        .await;
    let md = String::from_utf8(file.bytes).expect("markdown");
    assert!(md.starts_with(&format!("# Post-mortem: {id}")), "{md}");
    assert!(
        md.contains("Highest level reached: L2 operations team"),
        "{md}"
    );
    assert!(md.contains("Time to acknowledge: 0 min"), "{md}");
    for kind in ["opened", "note", "acknowledged", "escalated"] {
        assert!(md.contains(&format!("| {kind} |")), "{kind} in {md}");
    }
    app.command("incident INC-NOPE1 status", "U0OPS", "C0CMD")
        .await;
    app.slack
        .wait_for(20, "an unknown id", |s| {
            s.posts("C0CMD")
                .into_iter()
                .find(|p| message_text(p).contains("no incident `INC-NOPE1`"))
        })
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_incident_resolves_after_the_quiet_period_unless_kept_open() {
    let signer = SnsSigner::get();
    let app = spawn_app(sns_options(
        |s| s.escalation.resolve_after_ok_seconds = Some(1),
        None,
    ))
    .await;
    let send = |id: &str, name: &str, state: &str| {
        signer.notification(TOPIC, id, None, &alarm(name, state, "quiet-fn"))
    };

    assert_eq!(
        deliver(&app, &send("q-1", "quiet-a", "ALARM"), &[]).await.0,
        200
    );
    app.wait_incident_post("ALARM: quiet-a").await;
    assert_eq!(
        deliver(&app, &send("q-2", "quiet-a", "OK"), &[]).await.0,
        200
    );
    app.wait_incident_post("Resolved automatically").await;
    assert!(
        app.engine
            .store()
            .open_incidents()
            .await
            .expect("open")
            .is_empty()
    );

    assert_eq!(
        deliver(&app, &send("q-3", "quiet-b", "ALARM"), &[]).await.0,
        200
    );
    app.wait_incident_post("ALARM: quiet-b").await;
    let id = app.engine.store().open_incidents().await.expect("open")[0]
        .id
        .clone();
    // Recovered, then kept open by someone before the quiet period ends.
    app.engine
        .store()
        .set_auto_resolve(
            &id,
            scalebot::domain::state::IncidentState::Recovered,
            Some(chrono::Utc::now().timestamp_millis() + 60_000),
            0,
        )
        .await
        .expect("recovered");
    app.command(&format!("incident {id} keep"), "U0OPS", "C0KEEP")
        .await;
    app.wait_incident_post("Kept open by <@U0OPS>").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let open = app.engine.store().open_incidents().await.expect("open");
    assert_eq!(open.len(), 1, "kept open");
    assert_eq!(open[0].state.as_str(), "recovered");
    app.stop().await;
}

/// A verified message on an allowed topic that is not an alarm (a Budgets
/// text, say) is said once with its subject and marked processed, so that
/// it is neither dropped silently nor taken up again at every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_an_alarm_is_said_once_and_marked_processed() {
    let app = app().await;
    let signer = SnsSigner::get();
    let msg = signer.notification(
        TOPIC,
        "msg-not-an-alarm",
        Some("AWS Budgets: monthly-budget has exceeded your alert threshold"),
        "AWS Budget Notification December 01, 2026\nBudget Name: monthly-budget\nACTUAL Amount: $1,234.56",
    );
    assert_eq!(deliver(&app, &msg, &[]).await, (200, "stored\n".into()));
    let post = app.wait_incident_post("was not understood").await;
    let text = message_text(&post);
    assert!(text.contains("monthly-budget has exceeded"), "{text}");
    let started = std::time::Instant::now();
    while !app
        .engine
        .store()
        .unprocessed_sns(10)
        .await
        .expect("read")
        .is_empty()
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "still unprocessed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // SNS retries a delivery it thinks failed: the copy is a duplicate,
    // not a second post.
    let (status, _) = deliver(&app, &msg, &[]).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let said = app
        .slack
        .posts(INCIDENTS)
        .iter()
        .filter(|p| message_text(p).contains("was not understood"))
        .count();
    assert_eq!(said, 1);
    app.stop().await;
}
