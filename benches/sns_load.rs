//! Load generator for `POST /sns`: signed notifications (SignatureVersion 2,
//! the test CA of tests/support/sns.rs, certificate cache warm) into real
//! servers on loopback: one replica on the default SQLite store, or with
//! `SNS_BENCH_POSTGRES=postgres://…` (an admin URL: a database of its own
//! is created per run) `SNS_BENCH_REPLICAS` replicas (3 by default) on
//! PostgreSQL, the client spreading its connections over them.
//!
//! Phase 1: as fast as 32 concurrent connections go; verified-and-stored
//! notifications per second, then how long after the last 2xx the last one
//! was processed (its incident decided). Phase 2: an open-loop schedule of
//! 1,000/s for 10 s; latency from each request's scheduled time to its 2xx
//! (so a stall cannot hide requests that were due), p50/p99/max. Phase 3:
//! 100 new alarms a second for 10 s, each opening an incident; latency from
//! each one's scheduled send to its root message at the Slack fake.
//!
//! The notifications of phases 1 and 2 are CloudWatch ALARMs for 20
//! alarms, so the engine's own processing (incidents, coalesced repeats)
//! runs on the same two cores during the measurement; Slack is a local fake
//! that accepts every post, AWS a closed port.
//!
//! Run: `cargo bench --bench sns_load` (optionally `-- THROUGHPUT_N RATE_SECS`).

#[path = "../tests/support/slack.rs"]
mod slack;
#[path = "../tests/support/sns.rs"]
mod sns;

use std::collections::HashMap;
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

/// Where the replicas keep their store.
enum StoreKind {
    /// The default: a SQLite file (one replica).
    Sqlite,
    /// A database of its own on this PostgreSQL server, shared by them all.
    Postgres(String),
}

impl StoreKind {
    fn from_env() -> Self {
        match std::env::var("SNS_BENCH_POSTGRES") {
            Ok(url) if !url.is_empty() => Self::Postgres(url),
            _ => Self::Sqlite,
        }
    }
}

/// Creates an empty database for this run; its URL.
async fn fresh_postgres(admin: &str) -> String {
    let name = format!("sns_bench_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(admin).await.expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create the bench database");
    let mut url = url::Url::parse(admin).expect("a PostgreSQL URL");
    url.set_path(&name);
    url.to_string()
}

/// One `scalebot serve` replica in this process: its `/sns` URL and engine.
async fn start_replica(
    store_url: &str,
    signer: &SnsSigner,
    dir: &std::path::Path,
    slack_url: &str,
) -> (String, Arc<scalebot::engine::Engine>) {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &signer.ca_pem).expect("CA");
    let mut settings = SettingsFile::default();
    settings.server.listen = "127.0.0.1:0".parse().expect("addr");
    settings.store.url = store_url.to_owned();
    settings.sns.allowed_topics = vec![TOPIC.into()];
    settings.sns.extra_cert_hosts = vec![signer.host.clone()];
    settings.sns.extra_ca_pem_file = Some(ca);
    // A healthy Slack-compatible fake takes the posts (a post that fails is
    // retried by the work queue, which would measure Slack); it has no
    // per-channel limit, so the bot's pacing is off too (with it, 1,000
    // incidents in one channel would measure Slack's one post a second).
    settings.slack.api_url = slack_url.parse().expect("a URL");
    settings.slack.post_interval = Duration::ZERO;
    // Nothing listens on port 9, so AWS calls fail at once.
    settings.aws.endpoint_url = Some("http://127.0.0.1:9".parse().expect("a URL"));
    settings.aws.max_attempts = 1;
    settings.aws.region = "eu-central-1".into();
    let root = env!("CARGO_MANIFEST_DIR");
    settings.catalog.commands_dir = format!("{root}/commands").into();
    settings.catalog.charts_dir = format!("{root}/charts").into();
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
    (url, engine)
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
    let store = StoreKind::from_env();
    let replicas: usize = match store {
        StoreKind::Sqlite => 1,
        StoreKind::Postgres(_) => std::env::var("SNS_BENCH_REPLICAS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The bot's own log lines, when asked for (`RUST_LOG=scalebot=debug`).
    if std::env::var_os("RUST_LOG").is_some() {
        scalebot::telemetry::init();
    }
    // SAFETY: set before any other thread reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
    }

    let signer = SnsSigner::get();
    let started = Instant::now();
    let warm = bodies(signer, "warm", replicas);
    let load = bodies(signer, "load", throughput_n);
    let paced = bodies(signer, "paced", rate_secs * 1000);
    let openings = rate_secs * 100;
    let new_alarms: Vec<String> = (0..openings)
        .map(|i| {
            signer
                .notification(
                    TOPIC,
                    &format!("open-{i}"),
                    None,
                    &alarm(&format!("root-{i}")),
                )
                .to_string()
        })
        .collect();
    eprintln!(
        "signed {} notifications in {:.1} s",
        warm.len() + load.len() + paced.len() + new_alarms.len(),
        started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_url = match &store {
            StoreKind::Sqlite => format!("sqlite://{}", dir.path().join("bench.db").display()),
            StoreKind::Postgres(admin) => fresh_postgres(admin).await,
        };
        let fake_slack = slack::FakeSlack::start().await;
        let mut urls = Vec::new();
        let mut engines = Vec::new();
        for _ in 0..replicas {
            let (url, engine) =
                start_replica(&store_url, signer, dir.path(), &fake_slack.api_url()).await;
            urls.push(url);
            engines.push(engine);
        }
        println!(
            "{} replica(s) on {}",
            replicas,
            match store {
                StoreKind::Sqlite => "SQLite",
                StoreKind::Postgres(_) => "PostgreSQL",
            }
        );
        let engine = engines[0].clone();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("client");
        for (body, url) in warm.into_iter().zip(&urls) {
            assert_eq!(send(&client, url, body).await, 200, "warm-up accepted");
        }
        throughput(&client, &urls, load).await;
        let drain = Instant::now();
        while !engine
            .store()
            .unprocessed_sns(1)
            .await
            .expect("read")
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "processing of phase 1 finished {:.2} s after its last 2xx",
            drain.elapsed().as_secs_f64()
        );
        report_outcomes(engine.store().pool()).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        open_loop(&client, &urls, paced, rate_secs).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        alarm_to_root(&client, &urls, new_alarms, &fake_slack).await;
        if let StoreKind::Postgres(admin) = &store {
            drop_postgres(admin, &store_url).await;
        }
    });
}

/// Drops this run's database (the replicas still hold connections to it).
async fn drop_postgres(admin: &str, store_url: &str) {
    let Some(name) = url::Url::parse(store_url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_owned())
    else {
        return;
    };
    if let Ok(pool) = sqlx::PgPool::connect(admin).await {
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
        if let Err(e) = dropped {
            eprintln!("the bench database {name} was not dropped: {e}");
        }
    }
}

/// Phase 1: as fast as 32 connections go, spread over the replicas.
async fn throughput(client: &reqwest::Client, urls: &[String], load: Vec<String>) {
    let load = Arc::new(load);
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..32)
        .map(|w| {
            let (client, url, load, next, ok) = (
                client.clone(),
                urls[w % urls.len()].clone(),
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
    println!(
        "throughput: {ok}/{} accepted in {secs:.2} s = {:.0} verified+stored/s",
        load.len(),
        ok as f64 / secs
    );
}

/// Phase 2: an open loop at 1,000/s; latency from each request's
/// scheduled time to its 2xx.
async fn open_loop(client: &reqwest::Client, urls: &[String], paced: Vec<String>, secs: usize) {
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(paced.len());
    for (i, body) in paced.into_iter().enumerate() {
        let due = t0 + Duration::from_millis(i as u64);
        tokio::time::sleep_until(due).await;
        let (client, url) = (client.clone(), urls[i % urls.len()].clone());
        tasks.push(tokio::spawn(async move {
            let status = send(&client, &url, body).await;
            (status, due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed: std::collections::BTreeMap<u16, usize> = Default::default();
    for t in tasks {
        let (status, latency) = t.await.expect("task");
        if status != 200 {
            *failed.entry(status).or_default() += 1;
        }
        latencies.push(latency);
    }
    latencies.sort();
    println!(
        "1,000/s for {secs} s: {} requests, not 2xx by status (0: no answer): {failed:?}; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.90).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// Phase 3: 100 new alarms a second, each opening an incident; latency
/// from each notification's scheduled send to its root message arriving
/// at the Slack fake.
async fn alarm_to_root(
    client: &reqwest::Client,
    urls: &[String],
    alarms: Vec<String>,
    slack: &slack::FakeSlack,
) {
    let n = alarms.len();
    let t0 = tokio::time::Instant::now();
    let mut due_at = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for (i, body) in alarms.into_iter().enumerate() {
        let due = t0 + Duration::from_millis(10 * i as u64);
        tokio::time::sleep_until(due).await;
        due_at.push(due.into_std());
        let (client, url) = (client.clone(), urls[i % urls.len()].clone());
        tasks.push(tokio::spawn(async move { send(&client, &url, body).await }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200, "accepted");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let roots = loop {
        let mut roots: HashMap<usize, Instant> = HashMap::new();
        for c in slack.calls("chat.postMessage") {
            if !c.args["thread_ts"].is_null() {
                continue;
            }
            let text = c.args.to_string();
            if let Some(i) = text
                .split("ALARM: root-")
                .nth(1)
                .and_then(|rest| rest.split(|ch: char| !ch.is_ascii_digit()).next())
                .and_then(|d| d.parse::<usize>().ok())
            {
                roots.entry(i).or_insert(c.at);
            }
        }
        if roots.len() == n || Instant::now() > deadline {
            break roots;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut latencies: Vec<Duration> = roots
        .iter()
        .filter_map(|(i, at)| due_at.get(*i).map(|due| at.saturating_duration_since(*due)))
        .collect();
    latencies.sort();
    if latencies.is_empty() {
        println!("alarm → root: no root message arrived");
        return;
    }
    println!(
        "alarm → root message at 100 new alarms/s: {}/{n} roots posted; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
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
