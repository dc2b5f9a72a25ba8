//! Bad input at the door: each gets a clear error and changes nothing.

use crate::support::app::{
    Options, SIGNING_SECRET, TestApp, message_text, now, sign, slash_body, spawn_app,
};

async fn nothing_happened(app: &TestApp) {
    // Give a wrongly accepted job time to show itself.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        app.slack.calls("chat.postMessage").is_empty(),
        "nothing was posted"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        !metrics.contains("scalebot_aws_calls_total{"),
        "no AWS call: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_unsigned_requests_get_401() {
    let app = spawn_app(Options::default()).await;
    let body = slash_body("throttles persona-api", "U1", "C1");
    let url = format!("{}/slack/commands", app.base);
    let ts = now();

    let forged = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sign("not-the-secret", ts, &body))
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), 401);

    // Correctly signed, but six minutes old: a replay.
    let stale = app
        .post_signed(
            "/slack/commands",
            body.clone(),
            "application/x-www-form-urlencoded",
            ts - 360,
        )
        .await;
    assert_eq!(stale.status(), 401);
    assert!(stale.text().await.unwrap_or_default().contains("too old"));

    // Signed for another body: the text was tampered with on the way.
    let tampered = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sign(SIGNING_SECRET, ts, &body))
        .body(body.replace("persona-api", "auth-handler"))
        .send()
        .await
        .expect("request");
    assert_eq!(tampered.status(), 401);

    let unsigned = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), 401);
    assert!(
        unsigned
            .text()
            .await
            .unwrap_or_default()
            .contains("missing")
    );

    let garbage_ts = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", "yesterday")
        .header("x-slack-signature", sign(SIGNING_SECRET, ts, &body))
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(garbage_ts.status(), 401);

    nothing_happened(&app).await;
    assert!(
        app.audit().await.is_empty(),
        "nothing was audited as a command"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(
            r#"scalebot_requests_total{route="/slack/commands",outcome="bad_signature"} 3"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"scalebot_requests_total{route="/slack/commands",outcome="stale"} 1"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_malformed_and_oversized_bodies() {
    let app = spawn_app(Options::default()).await;
    let json = app
        .post_signed(
            "/slack/commands",
            r#"{"text":"throttles persona-api"}"#.into(),
            "application/json",
            now(),
        )
        .await;
    assert_eq!(json.status(), 415);

    // Signed, form-encoded, but without the fields of a slash command.
    let malformed = app
        .post_signed(
            "/slack/commands",
            "text=throttles".into(),
            "application/x-www-form-urlencoded",
            now(),
        )
        .await;
    assert_eq!(malformed.status(), 400);

    let huge = format!(
        "{}&pad={}",
        slash_body("help", "U1", "C1"),
        "x".repeat(70 * 1024)
    );
    let oversized = app
        .post_signed(
            "/slack/commands",
            huge,
            "application/x-www-form-urlencoded",
            now(),
        )
        .await;
    assert_eq!(oversized.status(), 413);

    let bad_payload = app
        .post_signed(
            "/slack/interactions",
            "payload=%7Bnot-json".into(),
            "application/x-www-form-urlencoded",
            now(),
        )
        .await;
    assert_eq!(bad_payload.status(), 400);

    nothing_happened(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_verbs_and_bad_arguments_get_usage_and_call_nothing() {
    let app = spawn_app(Options::default()).await;

    let ack = app.command("throtles persona-api", "U1", "C1").await;
    assert_eq!(ack["response_type"], "ephemeral");
    let text = ack["text"].as_str().unwrap_or_default();
    assert!(text.contains("unknown command `throtles`"), "{text}");
    assert!(text.contains("Did you mean `throttles`?"), "{text}");

    let ack = app.command("throttles", "U1", "C1").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Usage: `/scale throttles <function>`"),
        "{ack}"
    );

    let ack = app
        .command("throttles persona-api; rm -rf", "U1", "C1")
        .await;
    assert!(
        ack["text"].as_str().unwrap_or_default().contains("Usage"),
        "{ack}"
    );

    let ack = app.command("throttles bad/name", "U1", "C1").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("is not a Lambda function name"),
        "{ack}"
    );

    nothing_happened(&app).await;
    let audit = app.audit().await;
    assert_eq!(audit.len(), 4);
    assert!(audit.iter().all(|a| a.outcome == "rejected"), "{audit:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_catalog() {
    let app = spawn_app(Options::default()).await;
    let ack = app.command("help", "U1", "C1").await;
    let all = message_text(&ack);
    assert!(all.contains("/scale throttles <function>"), "{all}");
    let ack = app.command("help throttles", "U1", "C1").await;
    let one = message_text(&ack);
    assert!(one.contains("Lambda throttling emergency, step 1"), "{one}");
    // An empty command is help too.
    let ack = app.command("", "U1", "C1").await;
    assert!(message_text(&ack).contains("scalebot commands"));
    nothing_happened(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let app = spawn_app(Options::default()).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    app.command("help", "U1", "C1").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains(r#"scalebot_requests_total{route="/slack/commands",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(text.contains("scalebot_ack_seconds_bucket"), "{text}");
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_signing_secret_http_commands_are_off() {
    let app = spawn_app(Options {
        http: false,
        socket_mode: true,
        ..Options::default()
    })
    .await;
    let resp = app
        .post_signed(
            "/slack/commands",
            slash_body("help", "U1", "C1"),
            "application/x-www-form-urlencoded",
            now(),
        )
        .await;
    assert_eq!(resp.status(), 404);
    app.stop().await;
}

/// Every request is counted once, by the server's request layer: the route
/// axum matched (`unmatched` for none), the outcome its handler named (or
/// one from the status when no handler ran or named one), and the ack
/// latency for the platform routes only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_layer_counts_routes_and_outcomes() {
    let app = spawn_app(Options::default()).await;
    let form = "application/x-www-form-urlencoded";

    // Accepted, and refused by the handler's error type.
    app.command("help", "U1", "C1").await;
    let unsigned = app
        .http
        .post(format!("{}/slack/commands", app.base))
        .header("content-type", form)
        .body(slash_body("help", "U1", "C1"))
        .send()
        .await
        .expect("request");
    assert_eq!(unsigned.status(), 401);

    // Answered 200, with the outcome the handler named: not a click, and
    // a click on a button the bot does not draw.
    let not_a_click = serde_json::json!({"type": "view_submission", "user": {"id": "U1"}});
    let body = serde_urlencoded::to_string([("payload", not_a_click.to_string())]).expect("form");
    let ignored = app
        .post_signed("/slack/interactions", body, form, now())
        .await;
    assert_eq!(ignored.status(), 200);
    assert_eq!(app.click("U1", "C1", "no.such.button", "x").await, 200);

    // No handler ran: no route, a wrong method, a body over the limit.
    assert_eq!(app.get("/no/such/route").await.status(), 404);
    assert_eq!(app.get("/slack/commands").await.status(), 405);
    let huge = format!(
        "{}&pad={}",
        slash_body("help", "U1", "C1"),
        "x".repeat(70 * 1024)
    );
    let oversized = app.post_signed("/slack/commands", huge, form, now()).await;
    assert_eq!(oversized.status(), 413);
    assert_eq!(app.get("/healthz").await.status(), 200);

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for (route, outcome) in [
        ("/slack/commands", "ok"),
        ("/slack/commands", "missing_signature"),
        ("/slack/interactions", "ignored"),
        ("/slack/interactions", "refused"),
        ("unmatched", "not_found"),
        ("/slack/commands", "method_not_allowed"),
        ("/slack/commands", "too_large"),
        ("/healthz", "ok"),
    ] {
        let series = format!(r#"scalebot_requests_total{{route="{route}",outcome="{outcome}"}} 1"#);
        assert!(metrics.contains(&series), "{series} in:\n{metrics}");
    }
    // Each request once: four on /slack/commands, one series each.
    let on_commands: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with(r#"scalebot_requests_total{route="/slack/commands","#))
        .collect();
    assert_eq!(on_commands.len(), 4, "{on_commands:?}");
    assert!(
        metrics.contains(r#"scalebot_ack_seconds_count{route="/slack/commands"} 4"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"scalebot_ack_seconds_count{route="/slack/interactions"} 2"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"scalebot_ack_seconds_count{route="/healthz"}"#),
        "health checks are no acks: {metrics}"
    );
    app.stop().await;
}
