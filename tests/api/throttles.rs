//! `/scale throttles persona-api`, end to end.

use chrono::Utc;

use crate::support::app::{Options, decode_png, message_text, spawn_app};
use crate::support::moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_posts_figures_and_a_chart() {
    let aws = moto::url();
    let function = "persona-api";
    moto::create_function(&aws, function, Some(100)).await;
    moto::seed_day_with_throttling(&aws, function, Utc::now(), 100.0).await;
    let app = spawn_app(Options::default()).await;

    let ack = app
        .command("throttles persona-api", "U0ONCALL", "C0OPS")
        .await;
    assert_eq!(ack["response_type"], "ephemeral");
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("/scale throttles persona-api"),
        "{ack}"
    );

    let post = app
        .slack
        .wait_for(30, "the throttles summary", |s| {
            s.posts("C0OPS").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(text.contains("Throttles: persona-api"), "{text}");
    assert!(
        text.contains("*200 throttles* in the last 10 minutes"),
        "{text}"
    );
    // 200 throttles against 9 or 10 one-minute buckets of 400 invocations,
    // depending on where the minute boundaries fall against "now".
    assert!(
        text.contains("5.3 %") || text.contains("4.8 %"),
        "throttle rate: {text}"
    );
    assert!(
        text.contains("100 (last 10 min)"),
        "peak concurrency: {text}"
    );
    assert!(
        text.contains("*Reserved concurrency*\\n100"),
        "reserved: {text}"
    );
    assert!(text.contains("raising reserved concurrency"), "{text}");

    let upload = app
        .slack
        .wait_for(30, "the chart upload", |s| s.uploads().into_iter().next())
        .await;
    assert_eq!(upload.channel.as_deref(), Some("C0OPS"));
    assert_eq!(upload.declared_length, upload.bytes.len());
    assert!(upload.filename.ends_with(".png"));
    assert_eq!(decode_png(&upload.bytes), (1000, 500));
    let artifact =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("throttles-persona-api.png");
    std::fs::write(&artifact, &upload.bytes).expect("save the chart as a test artifact");
    assert!(upload.title.unwrap_or_default().contains("persona-api"));
    assert!(
        app.slack.calls("files.upload").is_empty(),
        "the retired files.upload is never used"
    );

    let audit = app.audit().await;
    let row = audit
        .iter()
        .find(|a| a.command == "throttles persona-api")
        .expect("audited");
    assert_eq!(
        (
            row.actor.as_str(),
            row.channel.as_str(),
            row.platform.as_str()
        ),
        ("U0ONCALL", "C0OPS", "slack")
    );
    assert_eq!(app.finished_outcome("throttles persona-api").await, "ok");

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(
            r#"scalebot_aws_calls_total{operation="cloudwatch:GetMetricData",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"scalebot_aws_calls_total{operation="lambda:GetFunctionConcurrency",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_function_says_so_and_its_chart_still_renders() {
    let aws = moto::url();
    moto::create_function(&aws, "quiet-fn", None).await;
    let app = spawn_app(Options::default()).await;
    app.command("throttles quiet-fn", "U1", "C0QUIET").await;
    let post = app
        .slack
        .wait_for(30, "the summary", |s| s.posts("C0QUIET").into_iter().next())
        .await;
    let text = message_text(&post);
    assert!(
        text.contains("No throttles in the last 10 minutes"),
        "{text}"
    );
    assert!(text.contains("shares the account"), "unreserved: {text}");
    let upload = app
        .slack
        .wait_for(30, "the chart", |s| s.uploads().into_iter().next())
        .await;
    assert_eq!(decode_png(&upload.bytes), (1000, 500));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_does_not_exist_is_named_in_plain_words() {
    let app = spawn_app(Options::default()).await;
    app.command("throttles no-such-fn", "U1", "C0MISSING").await;
    let post = app
        .slack
        .wait_for(30, "the error", |s| s.posts("C0MISSING").into_iter().next())
        .await;
    let text = message_text(&post);
    assert!(
        text.contains("Lambda function `no-such-fn` does not exist in eu-central-1"),
        "{text}"
    );
    assert!(app.slack.uploads().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_429_is_waited_out_and_the_post_retried() {
    let aws = moto::url();
    moto::create_function(&aws, "ratelimited-fn", Some(10)).await;
    let app = spawn_app(Options::default()).await;
    app.slack.rate_limit("chat.postMessage", 1, 1);
    app.command("throttles ratelimited-fn", "U1", "C0RL").await;
    let post = app
        .slack
        .wait_for(30, "the retried post", |s| {
            s.calls("chat.postMessage").into_iter().next()
        })
        .await;
    let limited = app.slack.rate_limited("chat.postMessage");
    assert_eq!(limited.len(), 1, "one 429 was served");
    let waited = post.at.duration_since(limited[0]);
    assert!(
        waited >= std::time::Duration::from_millis(950),
        "retried only after Retry-After: {waited:?}"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(r#"scalebot_chat_rate_limited_total{method="chat.postMessage"} 1"#),
        "{metrics}"
    );
    app.stop().await;
}
