//! Load generator for `POST /sns`: signed notifications (SignatureVersion 2,
//! the test CA of tests/support/sns.rs, certificate cache warm) into the
//! real server on loopback, stored in its default SQLite store.
//!
//! Phase 1: as fast as 32 concurrent connections go; verified-and-stored
//! notifications per second. Phase 2: an open-loop schedule of 1,000/s for
//! 10 s; latency from each request's scheduled time to its 2xx (so a stall
//! cannot hide requests that were due), p50/p99/max.
//!
//! The notifications are CloudWatch ALARMs for 20 alarms, so the engine's
//! own processing (incidents, coalesced repeats) runs on the same two cores
//! during the measurement; Slack is a local fake that accepts every post, AWS
//! a closed port.
//!
//! Run: `cargo bench --bench sns_load` (optionally `-- THROUGHPUT_N RATE_SECS`).

#[path = "../tests/support/slack.rs"]
mod slack;
#[path = "../tests/support/sns.rs"]
mod sns;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scalebot::config::SlackSecrets;
use scalebot::settings_file::SettingsFile;
use scalebot::startup::Application;
use sns::SnsSigner;

const TOPIC: &str = "arn:aws:sns:eu-central-1:123456789012:chatops-alarms";

fn alarm(name: &str) -> String {
    serde_json::json!({
        "AlarmName": name,
        "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [50.0] was greater than the threshold (10.0).",
        "StateChangeTime": "2026-11-28T09:00:00.000+0000",
        "Region": "EU (Frankfurt)",
        "AlarmArn": format!("arn:aws:cloudwatch:eu-central-1:123456789012:alarm:{name}"),
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": "Throttles", "Namespace": "AWS/Lambda", "Statistic": "SUM",
            "Dimensions": [{"value": "persona-api", "name": "FunctionName"}],
            "Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 10.0
        }
    })
    .to_string()
}

fn bodies(signer: &SnsSigner, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            signer
                .notification(
                    TOPIC,
                    &format!("{prefix}-{i}"),
                    None,
                    &alarm(&format!("bench-alarm-{}", i % 20)),
                )
                .to_string()
        })
        .collect()
}

async fn send(client: &reqwest::Client, url: &str, body: String) -> u16 {
    match client
        .post(url)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", "Notification")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // gets a short smoke run of the same code.
    let benching = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (default_n, default_secs) = if benching { (20_000, 10) } else { (200, 1) };
    let throughput_n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_n);
    let rate_secs: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_secs);
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The bot's own log lines, when asked for (`RUST_LOG=scalebot=debug`).
    if std::env::var_os("RUST_LOG").is_some() {
        scalebot::telemetry::init();
    }

    let signer = SnsSigner::get();
    let started = Instant::now();
    let warm = bodies(signer, "warm", 1);
    let load = bodies(signer, "load", throughput_n);
    let paced = bodies(signer, "paced", rate_secs * 1000);
    eprintln!(
        "signed {} notifications in {:.1} s",
        1 + load.len() + paced.len(),
        started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &signer.ca_pem).expect("CA");
        let mut settings = SettingsFile::default();
        settings.server.listen = "127.0.0.1:0".parse().expect("addr");
        settings.store.url = format!("sqlite://{}", dir.path().join("bench.db").display());
        settings.sns.allowed_topics = vec![TOPIC.into()];
        settings.sns.extra_cert_hosts = vec![signer.host.clone()];
        settings.sns.extra_ca_pem_file = Some(ca);
        // A healthy Slack-compatible fake takes the posts (a post that
        // fails is retried by the work queue, which would measure Slack);
        // nothing listens on port 9, so AWS calls fail at once.
        let fake_slack = slack::FakeSlack::start().await;
        settings.slack.api_url = fake_slack.api_url().parse().expect("a URL");
        settings.aws.endpoint_url = Some("http://127.0.0.1:9".parse().expect("a URL"));
        settings.aws.max_attempts = 1;
        settings.aws.region = "eu-central-1".into();
        let root = env!("CARGO_MANIFEST_DIR");
        settings.catalog.commands_dir = format!("{root}/commands").into();
        settings.catalog.charts_dir = format!("{root}/charts").into();
        // SAFETY: set before any other thread reads the environment.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
        }
        let secrets = SlackSecrets {
            bot_token: Some(scalebot::config::Secret::new(slack::BOT_TOKEN)),
            signing_secret: Some(scalebot::config::Secret::new("bench-signing-secret")),
            ..SlackSecrets::default()
        };
        let app = Application::build(settings, secrets)
            .await
            .expect("application");
        let url = format!("http://127.0.0.1:{}/sns", app.port());
        let engine = app.engine();
        tokio::spawn(async move {
            let _ = app.run_until(std::future::pending::<()>()).await;
        });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client");
        for body in warm {
            assert_eq!(send(&client, &url, body).await, 200, "warm-up accepted");
        }

        // Phase 1: throughput.
        let load = Arc::new(load);
        let next = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let workers: Vec<_> = (0..32)
            .map(|_| {
                let (client, url, load, next, ok) = (
                    client.clone(),
                    url.clone(),
                    load.clone(),
                    next.clone(),
                    ok.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = load.get(i) else { break };
                        if send(&client, &url, body.clone()).await == 200 {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("worker");
        }
        let secs = t0.elapsed().as_secs_f64();
        let ok = ok.load(Ordering::Relaxed);
        assert_eq!(ok, load.len(), "every notification accepted");
        let stored = engine.store().sns_count().await.expect("count");
        println!(
            "throughput: {ok}/{} accepted in {secs:.2} s = {:.0} verified+stored/s (store holds {stored})",
            load.len(),
            ok as f64 / secs
        );

        // The engine processes what phase 1 stored before phase 2 starts, so
        // phase 2 measures a steady 1,000/s rather than a backlog draining.
        let drain = Instant::now();
        while !engine
            .store()
            .unprocessed_sns(1)
            .await
            .expect("read")
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "processing of phase 1 finished {:.1} s after its last 2xx",
            drain.elapsed().as_secs_f64()
        );
        report_outcomes(engine.store().pool()).await;
        tokio::time::sleep(Duration::from_secs(1)).await;

        // Phase 2: open loop at 1,000/s.
        let t0 = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(paced.len());
        for (i, body) in paced.into_iter().enumerate() {
            let due = t0 + Duration::from_millis(i as u64);
            tokio::time::sleep_until(due).await;
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let status = send(&client, &url, body).await;
                (status, due.elapsed())
            }));
        }
        let mut latencies = Vec::with_capacity(tasks.len());
        let mut failed = 0;
        for t in tasks {
            let (status, latency) = t.await.expect("task");
            if status != 200 {
                failed += 1;
            }
            latencies.push(latency);
        }
        latencies.sort();
        println!(
            "1,000/s for {rate_secs} s: {} requests, {failed} not 2xx; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.90).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    });
}

/// What the work queue did with the stored messages: a retried message
/// (attempts > 1) is the first thing to look at when processing trails.
async fn report_outcomes(pool: &sqlx::AnyPool) {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT COALESCE(outcome, '-') AS outcome, attempts, COALESCE(last_error, '') AS last_error, \
         COUNT(*) AS n FROM sns_messages GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10",
    )
    .fetch_all(pool)
    .await
    .expect("outcomes");
    for r in rows {
        let outcome: String = r.try_get("outcome").unwrap_or_default();
        let attempts: i64 = r.try_get("attempts").unwrap_or_default();
        let error: String = r.try_get("last_error").unwrap_or_default();
        let n: i64 = r.try_get("n").unwrap_or_default();
        println!("  {n:>6} × {outcome} (attempts {attempts}) {error}");
    }
}
