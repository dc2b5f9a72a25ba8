//! `server.metrics_listen`: `/metrics`, `/readyz` and `/healthz` on a
//! listener of their own, and `/metrics` no longer on the public one.

use crate::support::app::{Options, spawn_app};
use scalebot::settings_file::SettingsFile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_to_their_own_listener_when_one_is_set() {
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            s.server.metrics_listen = Some("127.0.0.1:0".parse().expect("an address"));
        })),
        ..Options::default()
    })
    .await;
    let ops = app.metrics_base.clone().expect("a metrics listener");
    assert_ne!(ops, app.base, "a second port");

    // The public listener: the health routes for load balancers, no metrics.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404, "/metrics is not public any more");
    let ack = app.command("help", "U1", "C1").await;
    assert!(ack.is_object(), "the bot still answers: {ack}");

    // The metrics listener: metrics (counting the public requests) and
    // health, and none of the platforms' routes.
    let get = |path: &str| app.http.get(format!("{ops}{path}")).send();
    let metrics = get("/metrics").await.expect("request");
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        metrics.headers()
    );
    let text = metrics.text().await.expect("metrics");
    assert!(
        text.contains(r#"scalebot_requests_total{route="/slack/commands","#),
        "the public listener's requests are counted:\n{text}"
    );
    assert!(
        text.contains(r#"scalebot_requests_total{route="unmatched",outcome="not_found"} 1"#),
        "the refused public /metrics is counted too:\n{text}"
    );
    let ready = get("/readyz").await.expect("request");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("body"), "ready\n");
    assert_eq!(get("/healthz").await.expect("request").status(), 200);
    let slack = app
        .http
        .post(format!("{ops}/slack/commands"))
        .body("x")
        .send()
        .await
        .expect("request");
    assert_eq!(
        slack.status(),
        404,
        "no platform route on the metrics listener"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_metrics_listener_metrics_stay_on_the_public_one() {
    let app = spawn_app(Options::default()).await;
    assert!(app.metrics_base.is_none());
    assert_eq!(app.get("/healthz").await.status(), 200);
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .expect("metrics")
            .contains(r#"scalebot_requests_total{route="/healthz",outcome="ok"} 1"#)
    );
    app.stop().await;
}
