//! `/scale throttles persona-api`, end to end.

use chrono::Utc;

use crate::support::app::{INCIDENTS, Options, decode_png, message_text, spawn_app};
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

/// Lambda's datapoints as CloudWatch holds them: one at the start of each
/// minute. Minutes after `now` are written too, so that whichever minute
/// the server's clock is in when it reads, every minute of its window has
/// its datapoint.
fn per_minute(
    now: chrono::DateTime<Utc>,
    value: impl Fn(i64) -> f64,
) -> Vec<(chrono::DateTime<Utc>, f64)> {
    use chrono::DurationRound;
    let minute = now
        .duration_trunc(chrono::Duration::minutes(1))
        .expect("a minute");
    (-15..=2)
        .map(|k| (minute + chrono::Duration::minutes(k), value(k)))
        .collect()
}

/// The first `Raise reserved concurrency …` button's label and value.
fn raise_button(post: &serde_json::Value) -> (String, String) {
    post["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["text"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Raise reserved concurrency"))
        })
        .map(|e| {
            (
                e["text"]["text"].as_str().unwrap_or_default().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .expect("the raise button")
}

/// 40 throttles a minute for the last 10+ minutes: the count is the exact
/// window from the 1-minute data (400, where summing the 5-minute buckets
/// that start inside the window gave 200 or 240), with the 5-minute
/// buckets beside it; and the raise it offers comes from the peak
/// concurrency (140 × 1.2 = 168), not the runbook's 100, in the button
/// and in the plan the button makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_a_minute_reads_four_hundred_and_the_raise_comes_from_the_peak() {
    let aws = moto::url();
    let f = "forty-fn";
    moto::create_function(&aws, f, Some(100)).await;
    let now = Utc::now();
    moto::put_lambda_metric(&aws, f, "Throttles", &per_minute(now, |_| 40.0)).await;
    moto::put_lambda_metric(&aws, f, "Invocations", &per_minute(now, |_| 360.0)).await;
    let conc = per_minute(now, |k| if k == -3 { 140.0 } else { 100.0 });
    moto::put_lambda_metric(&aws, f, "ConcurrentExecutions", &conc).await;
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s| {
            s.roles.insert("operators".into(), vec!["U0OPS".into()]);
        })),
        ..Options::default()
    })
    .await;

    app.command("throttles forty-fn", "U0OPS", "C0FORTY").await;
    let post = app
        .slack
        .wait_for(30, "the throttles summary", |s| {
            s.posts("C0FORTY").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(
        text.contains("*400 throttles* in the last 10 minutes (1-minute data; 5-minute periods"),
        "{text}"
    );
    assert!(text.contains("*Throttles (10 min)*\\n400"), "{text}");
    // The 5-minute buckets are listed beside it, each with its start.
    let periods = text
        .split("the first may start before the window: ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the 5-minute buckets");
    assert!(periods.contains(" from "), "{periods}");
    assert!(text.contains("10.0 %"), "40 of 400 calls a minute: {text}");
    assert!(
        text.contains("Proposed reserved concurrency: peak 140 × 1.2 = 168 > floor 100 → 168."),
        "{text}"
    );
    let (label, value) = raise_button(&post);
    assert_eq!(label, "Raise reserved concurrency to 168");
    assert_eq!(value, "concurrency forty-fn auto");

    app.click("U0OPS", "C0FORTY", "run", &value).await;
    let (plan, proposal) = app.wait_plan("concurrency forty-fn auto").await;
    let text = message_text(&proposal);
    assert!(text.contains("100 → 168"), "{text}");
    assert!(
        text.contains("peak concurrency of the last 10 minutes, headroom 1.2): peak 140 × 1.2 = 168 > floor 100 → 168."),
        "{text}"
    );
    // moto has no GetAccountSettings: no cap, and the plan says so.
    assert!(text.contains("Account concurrency unknown"), "{text}");
    app.click("U0OPS", INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("reserved concurrency of `forty-fn` is now 168")
        .await;
    assert_eq!(moto::reserved(&aws, f).await, Some(168));
    app.stop().await;
}

/// When the account cannot spare it, the raise is capped at what AWS would
/// leave reservable, with a sentence. moto 5.2.5 has no Lambda
/// `GetAccountSettings`: a stand-in (tests/support/aws_standin.rs) answers
/// it in Lambda's REST-JSON wire format and passes the rest to moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_the_account_cannot_spare_is_capped_with_a_sentence() {
    use crate::support::aws_standin;
    let aws = moto::url();
    let f = "capped-fn";
    moto::create_function(&aws, f, Some(100)).await;
    let conc = per_minute(Utc::now(), |k| if k == -2 { 400.0 } else { 100.0 });
    moto::put_lambda_metric(&aws, f, "ConcurrentExecutions", &conc).await;
    let standin = aws_standin::start(
        aws.clone(),
        vec![aws_standin::lambda_account_settings(1000, 150)],
    )
    .await;
    let app = spawn_app(Options {
        aws_endpoint: Some(standin.url.clone()),
        ..Options::default()
    })
    .await;
    app.command("concurrency capped-fn auto", "U0OPS", "C0CAP")
        .await;
    let (_, proposal) = app.wait_plan("concurrency capped-fn auto").await;
    let text = message_text(&proposal);
    // 150 unreserved + this function's 100 − the 100 AWS keeps = 150.
    assert!(text.contains("100 → 150"), "{text}");
    assert!(
        text.contains("peak 400 × 1.2 = 480 > floor 100 → 480 → capped at 150"),
        "{text}"
    );
    assert!(
        text.contains(
            "Capped at 150: the account has 150 of its 1000 unreserved besides this function's 100, \
             and AWS keeps 100 unreserved."
        ),
        "{text}"
    );
    assert!(
        text.contains("Account concurrency 1000: unreserved 150 now → 100 after this change."),
        "{text}"
    );
    assert_eq!(standin.answered(), ["/2016-08-19/account-settings"]);
    assert_eq!(moto::reserved(&aws, f).await, Some(100), "only planned");
    app.stop().await;
}
