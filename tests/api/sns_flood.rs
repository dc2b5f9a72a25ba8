//! `POST /sns` under a flood of made-up certificate URLs: with one allowed
//! topic an unauthenticated sender can name any `SigningCertURL` on an SNS
//! host. The bot fetches each URL once however many requests wait for it,
//! remembers failures, fetches at most `sns.cert_fetches_per_minute`
//! certificates in a minute (503 without a fetch beyond that), and keeps
//! taking real messages whose certificate it already has. Fetches are
//! counted at the test's certificate server, by a path prefix of this
//! test's own.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::sns::{TOPIC, deliver, sns_options};
use crate::support::app::{TestApp, spawn_app};
use crate::support::sns::SnsSigner;

const CAP: usize = 10;

/// A notification whose certificate is at `cert_url`. The URL is not part
/// of what SNS signs, so the signature stays valid.
fn notification(id: &str, cert_url: &str) -> Value {
    let signer = SnsSigner::get();
    let mut msg = signer.notification(TOPIC, id, None, &format!("flood test {id}"));
    msg["SigningCertURL"] = json!(cert_url);
    msg
}

/// The same, with a signature made for another message: what a sender
/// without SNS's key can send.
fn forged(id: &str, cert_url: &str) -> Value {
    let mut msg = notification(&format!("{id}-genuine"), cert_url);
    msg["MessageId"] = json!(id);
    msg
}

/// Sends every message, `parallel` at a time; the statuses in order.
async fn deliver_all(app: &TestApp, msgs: Vec<Value>, parallel: usize) -> Vec<u16> {
    futures::stream::iter(msgs)
        .map(|m| async move { deliver(app, &m, &[]).await.0 })
        .buffered(parallel)
        .collect()
        .await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_certificate_urls_fetches_at_most_the_cap() {
    let app = spawn_app(sns_options(
        |s| {
            s.sns.cert_fetches_per_minute = CAP;
            s.sns.cert_failure_ttl = Duration::from_secs(30);
        },
        None,
    ))
    .await;
    let signer = SnsSigner::get();
    let prefix = format!("flood-{}", uuid::Uuid::new_v4().simple());
    let url = |name: &str| signer.cert_url_named(&format!("{prefix}-{name}"));
    let fetches = || signer.fetches_with_prefix(&prefix);
    let started = Instant::now();

    // A real message: its certificate is fetched once and cached.
    let real = url("real");
    assert_eq!(
        deliver(&app, &notification("real-0", &real), &[]).await.0,
        200
    );
    assert_eq!(fetches(), 1);

    // A certificate the host does not have: 503 (SNS retries), and the
    // failure stands: asked again, nothing is fetched.
    let missing = signer.cert_url_named(&format!("missing-{prefix}"));
    let statuses = deliver_all(
        &app,
        (0..6)
            .map(|i| forged(&format!("missing-{i}"), &missing))
            .collect(),
        1,
    )
    .await;
    assert_eq!(statuses, [503; 6], "a missing certificate");
    assert_eq!(
        signer.fetches_of(&missing),
        1,
        "one fetch, then the failure is remembered"
    );

    // A certificate with the right key but not issued to SNS: 400, once.
    let wrong = signer.cert_url_named(&format!("wrong-subject-{prefix}"));
    let statuses = deliver_all(
        &app,
        (0..3)
            .map(|i| notification(&format!("wrong-{i}"), &wrong))
            .collect(),
        1,
    )
    .await;
    assert_eq!(statuses, [400; 3], "a certificate issued to evil.example");
    assert_eq!(signer.fetches_of(&wrong), 1);

    // Forty requests at once naming one new URL: one fetch between them.
    let shared = url("shared");
    let statuses = deliver_all(
        &app,
        (0..40)
            .map(|i| forged(&format!("shared-{i}"), &shared))
            .collect(),
        40,
    )
    .await;
    assert_eq!(
        count(&statuses, 401),
        40,
        "fetched, then the forged signature: {statuses:?}"
    );
    assert_eq!(signer.fetches_of(&shared), 1, "deduplicated in flight");
    assert_eq!(fetches(), 2);

    // The flood: 500 requests, 64 at a time, each with a URL of its own,
    // and real messages on the cached certificate in between.
    let flood: Vec<Value> = (0..500)
        .map(|i| match i % 50 {
            0 => notification(&format!("real-{}", i / 50 + 1), &real),
            _ => forged(&format!("flood-{i}"), &url(&format!("random-{i}"))),
        })
        .collect();
    let statuses = deliver_all(&app, flood, 64).await;
    let elapsed = started.elapsed();
    let real_ones: Vec<u16> = statuses.iter().step_by(50).copied().collect();
    assert_eq!(real_ones, [200; 10], "real messages get through the flood");
    let made_up: Vec<u16> = statuses
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 50 != 0)
        .map(|(_, s)| *s)
        .collect();
    // Four of the minute's fetches went on real, missing, wrong and shared.
    let fetched = CAP - 4;
    assert_eq!(count(&made_up, 401), fetched, "{made_up:?}");
    assert_eq!(
        count(&made_up, 503),
        made_up.len() - fetched,
        "the rest refused without a fetch"
    );
    assert!(
        elapsed < Duration::from_secs(55),
        "all inside one minute: {elapsed:?}"
    );
    assert_eq!(fetches() + 2, CAP, "at most the cap in the minute");
    eprintln!(
        "sns flood: {} requests with {} distinct made-up certificate URLs and 11 real ones in {:.1} s: \
         {} certificate fetches in all (cap {CAP} a minute), {} refused 503 without a fetch",
        1 + 6 + 3 + 40 + statuses.len(),
        made_up.len() + 3,
        elapsed.as_secs_f64(),
        fetches() + 2,
        count(&made_up, 503)
    );

    // Each refusal is counted under its reason.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let capped = format!(
        r#"scalebot_requests_total{{route="/sns",outcome="cert_fetch_capped"}} {}"#,
        made_up.len() - fetched
    );
    assert!(metrics.contains(&capped), "{capped} in:\n{metrics}");
    assert_eq!(
        app.engine.store().sns_count().await.expect("count"),
        11,
        "the real messages only"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_url_outside_the_topics_region_is_refused_before_any_fetch() {
    let app = spawn_app(sns_options(|_| {}, None)).await;
    // TOPIC is in eu-central-1; SNS serves its certificates from there.
    let msg = notification(
        "other-region",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
    );
    let (status, text) = deliver(&app, &msg, &[]).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("the SNS endpoint of the topic's region"),
        "{text}"
    );
    app.stop().await;
}
