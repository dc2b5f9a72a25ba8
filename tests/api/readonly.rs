//! The read-only runbook commands end to end: `rds connections`, `cost`,
//! `policies` and `activities`, through the real server, with AWS in moto
//! and Slack in the local fake.
//!
//! Tests share one moto and run in parallel, so every resource name is
//! unique to its test.

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};

use crate::support::app::{Options, decode_png, message_text, spawn_app};
use crate::support::moto;

/// Lowercase letters and digits after a prefix, valid as an RDS
/// identifier, a Lambda function name and a policy name.
fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..10])
}

async fn sdk() -> aws_config::SdkConfig {
    moto::sdk_config(&moto::url()).await
}

fn berlin(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Berlin)
        .format("%H:%M")
        .to_string()
}

async fn create_db(db: &str) {
    moto::create_db_instance(&moto::url(), db).await;
}

async fn put_rds_metric(db: &str, metric: &str, points: &[(DateTime<Utc>, f64)]) {
    let cw = aws_sdk_cloudwatch::Client::new(&sdk().await);
    for chunk in points.chunks(500) {
        let data = chunk
            .iter()
            .map(|(t, v)| {
                MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        Dimension::builder()
                            .name("DBInstanceIdentifier")
                            .value(db)
                            .build(),
                    )
                    .timestamp(aws_smithy_types::DateTime::from_millis(
                        t.timestamp_millis(),
                    ))
                    .value(*v)
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace("AWS/RDS")
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("put metric data");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_connections_posts_figures_against_the_baseline_and_offers_a_proxy() {
    let db = unique("conn-db");
    create_db(&db).await;
    // Three hours a minute apart: 40 connections, a peak of 120 an hour and
    // a half ago, and a climb to 87 in the last ten minutes; CPU 42 % in
    // those ten minutes, 90 % before.
    let now = Utc::now();
    let recent = [85.0, 87.0, 84.0, 80.0, 75.0, 70.0, 65.0, 62.0, 60.0];
    let mut connections = Vec::new();
    let mut cpu = Vec::new();
    for k in (1..180).rev() {
        let t = now - Duration::minutes(k);
        let c = match k {
            1..=9 => recent[(k - 1) as usize],
            90 => 120.0,
            _ => 40.0,
        };
        connections.push((t, c));
        cpu.push((t, if k <= 10 { 42.0 } else { 90.0 }));
    }
    put_rds_metric(&db, "DatabaseConnections", &connections).await;
    put_rds_metric(&db, "CPUUtilization", &cpu).await;
    let app = spawn_app(Options::default()).await;

    let ack = app
        .command(&format!("rds connections {db}"), "U0ONCALL", "C0RDS")
        .await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("/scale rds connections {db}")),
        "{ack}"
    );
    let post = app
        .slack
        .wait_for(30, "the connections summary", |s| {
            s.posts("C0RDS").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(
        text.contains(&format!("⚠️ RDS connections: {db}")),
        "a surge is a warning: {text}"
    );
    assert!(
        text.contains("*87 connections* at most in the last 10 minutes (5-minute maxima: "),
        "{text}"
    );
    assert!(
        text.contains("That is 2.2× the 3-hour median of 40"),
        "{text}"
    );
    assert!(text.contains("*Connections (max, 10 min)*\\n87"), "{text}");
    let latest = format!(
        "*Latest (1 min)*\\n85 at {}",
        berlin(now - Duration::minutes(1))
    );
    assert!(text.contains(&latest), "{latest} in {text}");
    let peak = format!(
        "*Peak (3 h)*\\n120 at {}",
        berlin(now - Duration::minutes(90))
    );
    assert!(text.contains(&peak), "{peak} in {text}");
    assert!(text.contains("*CPU (avg, 10 min)*\\n42 %"), "{text}");
    assert!(
        text.contains("*Instance*\\npostgres · db.t3.micro · available"),
        "{text}"
    );
    assert!(text.contains("*RDS Proxy*\\nnone"), "{text}");
    assert!(
        text.contains("runbook: RDS connection pool exhaustion, step 1"),
        "{text}"
    );
    // Step 2 is one click away, as a command that goes through a plan.
    let button = &post["blocks"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "actions"))
        .expect("an actions block")["elements"][0];
    assert_eq!(button["action_id"], "run", "{button}");
    assert_eq!(button["value"], format!("rds proxy {db}"), "{button}");
    assert_eq!(button["text"]["text"], "Enable RDS Proxy", "{button}");

    let upload = app
        .slack
        .wait_for(30, "the chart upload", |s| s.uploads().into_iter().next())
        .await;
    assert_eq!(upload.channel.as_deref(), Some("C0RDS"));
    assert_eq!(decode_png(&upload.bytes), (1000, 500));
    assert!(upload.title.unwrap_or_default().contains(&db));
    let artifact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rds-connections.png");
    std::fs::write(&artifact, &upload.bytes).expect("save the chart as a test artifact");

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for line in [
        r#"operation="rds:DescribeDBInstances",outcome="ok"} 1"#,
        r#"operation="rds:DescribeDBProxies",outcome="ok"} 1"#,
        r#"operation="cloudwatch:GetMetricData",outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert_eq!(
        app.finished_outcome(&format!("rds connections {db}")).await,
        "ok"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_connections_names_the_proxy_in_front_and_says_when_there_is_no_data() {
    let db = unique("proxied-db");
    create_db(&db).await;
    // Named as the runbook (and `/scale rds proxy`) name it; found by its target.
    let proxy = format!("{db}-proxy");
    // A proxy fronts the database it has as a registered target.
    moto::create_proxy(&proxy, &db).await;
    let app = spawn_app(Options::default()).await;

    app.command(&format!("rds connections {db}"), "U1", "C0PROXIED")
        .await;
    let post = app
        .slack
        .wait_for(30, "the summary", |s| {
            s.posts("C0PROXIED").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(
        text.contains("No `DatabaseConnections` datapoints in the last 10 minutes"),
        "{text}"
    );
    assert!(
        text.contains(&format!("RDS Proxy `{proxy}` fronts it (available)")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "*RDS Proxy*\\n`{proxy}` (available, TLS required)"
        )),
        "{text}"
    );
    assert!(!text.contains("Enable RDS Proxy"), "no button: {text}");
    let upload = app
        .slack
        .wait_for(30, "the chart", |s| s.uploads().into_iter().next())
        .await;
    assert_eq!(decode_png(&upload.bytes), (1000, 500));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_connections_for_a_missing_db_is_a_plain_sentence() {
    let db = unique("no-such-db");
    let app = spawn_app(Options::default()).await;
    app.command(&format!("rds connections {db}"), "U1", "C0NODB")
        .await;
    let post = app
        .slack
        .wait_for(30, "the error", |s| s.posts("C0NODB").into_iter().next())
        .await;
    let text = message_text(&post);
    assert!(
        text.contains(&format!(
            "RDS instance `{db}` does not exist in eu-central-1"
        )),
        "{text}"
    );
    assert_eq!(
        app.finished_outcome(&format!("rds connections {db}")).await,
        "failed"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        !metrics.contains("cloudwatch:GetMetricData"),
        "no metrics are read for a database that does not exist:\n{metrics}"
    );
    assert!(app.slack.uploads().is_empty());
    app.stop().await;
}

/// A moto account no other test uses, unique per run as well in case
/// MOTO_URL points at a moto that outlives this test binary.
pub(crate) fn fresh_account() -> String {
    format!("9{:011}", uuid::Uuid::new_v4().as_u128() % 100_000_000_000)
}

/// A pass-through to moto that pins every request to one moto account
/// (moto reads `x-moto-account-id`), so that a test has AWS state no other
/// test touches. moto keeps one queue of Cost Explorer answers per account
/// and hands them to whichever request comes first: in an account of its
/// own, this test's answer cannot go to another test's cost request, nor
/// theirs to this one.
pub(crate) async fn account_proxy(account: String) -> String {
    type Ctx = (String, String, reqwest::Client);
    async fn forward(
        State((upstream, account, http)): State<Ctx>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut req = http.request(method, format!("{upstream}{path}"));
        for (k, v) in headers.iter() {
            if k != "host" && k != "content-length" {
                req = req.header(k, v);
            }
        }
        req = req.header(
            "x-moto-account-id",
            HeaderValue::from_str(&account).expect("an account id"),
        );
        match req.body(body).send().await {
            Ok(resp) => {
                let status =
                    StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                let mut out = HeaderMap::new();
                for (k, v) in resp.headers() {
                    if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                        out.insert(k.clone(), v.clone());
                    }
                }
                let body = resp.bytes().await.unwrap_or_default();
                (status, out, body).into_response()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the account proxy");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new().fallback(forward).with_state((
        moto::moto_url(),
        account,
        reqwest::Client::new(),
    ));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_totals_compares_and_charts_by_service() {
    let account = fresh_account();
    let endpoint = account_proxy(account.clone()).await;

    // Seven UTC days before today, as the command asks for them. (A run
    // that straddles midnight UTC would ask for other days.)
    let today = Utc::now().date_naive();
    let daily: &[(&str, [f64; 7])] = &[
        ("AWS Lambda", [10.0, 10.0, 10.0, 10.0, 10.0, 20.0, 60.0]),
        ("Amazon Relational Database Service", [25.0; 7]),
        ("Amazon ElastiCache", [8.0; 7]),
        ("Amazon API Gateway", [3.0; 7]),
        ("AmazonCloudWatch", [2.0; 7]),
        ("Amazon Simple Storage Service", [1.5; 7]),
        ("AWS Cost Explorer", [0.3; 7]),
    ];
    let results_by_time: Vec<serde_json::Value> = (0..7)
        .map(|i| {
            let day = today - Duration::days(7 - i);
            serde_json::json!({
                "TimePeriod": {
                    "Start": day.format("%Y-%m-%d").to_string(),
                    "End": (day + Duration::days(1)).format("%Y-%m-%d").to_string()
                },
                "Total": {},
                "Groups": daily.iter().map(|(service, amounts)| serde_json::json!({
                    "Keys": [service],
                    "Metrics": {"BlendedCost": {
                        "Amount": format!("{:.10}", amounts[i as usize]),
                        "Unit": "USD"
                    }}
                })).collect::<Vec<_>>(),
                "Estimated": i >= 5
            })
        })
        .collect();
    moto::queue_cost_and_usage_in(&account, results_by_time).await;

    let app = spawn_app(Options {
        aws_endpoint: Some(endpoint),
        ..Options::default()
    })
    .await;
    // The default is 7 days.
    let ack = app.command("cost", "U0FINANCE", "C0COST").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("/scale cost 7"),
        "{ack}"
    );
    let post = app
        .slack
        .wait_for(30, "the cost summary", |s| {
            s.posts("C0COST").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    let first = today - Duration::days(7);
    let last = today - Duration::days(1);
    for needle in [
        "AWS cost: last 7 days".to_owned(),
        format!(
            "*$408.60* over the last 7 days ({} – {}, UTC days)",
            first.format("%Y-%m-%d"),
            last.format("%Y-%m-%d")
        ),
        // 99.80 against 59.80 is 66.9 % more.
        "Yesterday $99.80 vs. $59.80 the day before: *+66.9 %*".to_owned(),
        "Largest increase: AWS Lambda +$40.00 (+200.0 %)".to_owned(),
        "*Total (7 days)*\\n$408.60".to_owned(),
        format!("*Yesterday ({})*\\n$99.80 (+66.9 %)", last.format("%d.%m.")),
        "*Amazon Relational Database Service*\\n$175.00 (42.8 %)".to_owned(),
        "*AWS Lambda*\\n$130.00 (31.8 %)".to_owned(),
        "*Amazon ElastiCache*\\n$56.00 (13.7 %)".to_owned(),
        "*Amazon API Gateway*\\n$21.00 (5.1 %)".to_owned(),
        "*AmazonCloudWatch*\\n$14.00 (3.4 %)".to_owned(),
        "*Amazon Simple Storage Service*\\n$10.50 (2.6 %)".to_owned(),
        "*AWS Cost Explorer*\\n$2.10 (0.5 %)".to_owned(),
        "runbook: cost runaway emergency, step 1".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle} in {text}");
    }
    // Largest first: RDS before Lambda.
    assert!(
        text.find("*Amazon Relational Database Service*") < text.find("*AWS Lambda*"),
        "{text}"
    );
    assert!(text.contains("⚠️"), "a 67 % rise is a warning: {text}");

    let upload = app
        .slack
        .wait_for(30, "the cost chart", |s| s.uploads().into_iter().next())
        .await;
    assert_eq!(upload.channel.as_deref(), Some("C0COST"));
    assert_eq!(decode_png(&upload.bytes), (1000, 500));
    assert!(
        upload
            .title
            .unwrap_or_default()
            .contains("Daily cost by service, last 7 days"),
    );
    let artifact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cost.png");
    std::fs::write(&artifact, &upload.bytes).expect("save the chart as a test artifact");

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains(r#"operation="ce:GetCostAndUsage",outcome="ok"} 1"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_0_gets_the_usage_line_and_calls_nothing() {
    let app = spawn_app(Options::default()).await;
    let ack = app.command("cost 0", "U1", "C0COSTZERO").await;
    let text = ack["text"].as_str().unwrap_or_default();
    assert!(text.contains("<days>: 0 is below the minimum 1"), "{ack}");
    assert!(text.contains("Usage: `/scale cost [days]`"), "{ack}");
    assert_eq!(ack["response_type"], "ephemeral");
    let audit = app.audit().await;
    let row = audit
        .iter()
        .find(|a| a.command == "cost 0")
        .expect("audited");
    assert_eq!(row.outcome, "rejected");
    // Nothing was spawned, so nothing can arrive later either.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.slack.posts("C0COSTZERO").is_empty());
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(!metrics.contains("ce:GetCostAndUsage"), "{metrics}");
    app.stop().await;
}

async fn tracking_policy(endpoint: &str, name: &str, resource: &str, min: i32, max: i32) {
    let aas = aws_sdk_applicationautoscaling::Client::new(&moto::sdk_config(endpoint).await);
    aas.register_scalable_target()
        .service_namespace(ServiceNamespace::Lambda)
        .resource_id(resource)
        .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
        .min_capacity(min)
        .max_capacity(max)
        .send()
        .await
        .expect("register scalable target");
    let metric = PredefinedMetricSpecification::builder()
        .predefined_metric_type(MetricType::LambdaProvisionedConcurrencyUtilization)
        .build()
        .expect("metric");
    let tracking = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(0.7)
        .predefined_metric_specification(metric)
        .scale_in_cooldown(120)
        .scale_out_cooldown(30)
        .build()
        .expect("tracking configuration");
    aas.put_scaling_policy()
        .policy_name(name)
        .service_namespace(ServiceNamespace::Lambda)
        .resource_id(resource)
        .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(tracking)
        .send()
        .await
        .expect("put scaling policy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_show_each_policy_with_its_target_and_verdict() {
    // A moto account of its own: other tests put policies and targets into
    // the same namespace, and the reply lists them all.
    let account = fresh_account();
    let endpoint = account_proxy(account).await;
    let (free, pinned) = (unique("free"), unique("pinned"));
    let free_resource = moto::function_with_alias_at(&endpoint, &free).await;
    let pinned_resource = moto::function_with_alias_at(&endpoint, &pinned).await;
    tracking_policy(&endpoint, &free, &free_resource, 1, 10).await;
    tracking_policy(&endpoint, &pinned, &pinned_resource, 3, 3).await;
    let app = spawn_app(Options {
        aws_endpoint: Some(endpoint),
        ..Options::default()
    })
    .await;

    app.command("policies", "U1", "C0POLICIES").await;
    let post = app
        .slack
        .wait_for(30, "the policies", |s| {
            s.posts("C0POLICIES").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(text.contains("Scaling policies: lambda"), "{text}");
    assert!(
        text.contains(&format!(
            "*Verdict:* 2 of 2 policies have a problem. First, `{free}`: no CloudWatch alarms are attached"
        )),
        "{text}"
    );
    // moto 5.2.5 attaches no alarms to Lambda policies, so the one with
    // room to scale is judged on that; the INSUFFICIENT_DATA and ALARM
    // verdicts are covered by the unit tests in policies.rs.
    let free_field = format!(
        "*{free}*\\n`{free_resource}` · target tracking · capacity 1 – 10\\n\
         target 0.7 of LambdaProvisionedConcurrencyUtilization\\n\
         cooldown out 30 s · in 120 s\\n\
         ⚠️ No CloudWatch alarms are attached, so nothing can trigger it"
    );
    assert!(text.contains(&free_field), "{free_field} in {text}");
    let pinned_field =
        format!("*{pinned}*\\n`{pinned_resource}` · target tracking · capacity 3 – 3\\n");
    assert!(text.contains(&pinned_field), "{pinned_field} in {text}");
    assert!(
        text.contains("⚠️ Its scalable target has min = max = 3, so it cannot change capacity"),
        "{text}"
    );
    let targets = format!(
        "*Scalable targets (min – max)*\\n`{free_resource}` 1 – 10\\n`{pinned_resource}` 3 – 3 (pinned)"
    );
    assert!(text.contains(&targets), "{targets} in {text}");
    assert!(
        text.contains("runbook: troubleshooting, auto-scaling not triggering"),
        "{text}"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for line in [
        r#"operation="application-autoscaling:DescribeScalingPolicies",outcome="ok"} 1"#,
        r#"operation="application-autoscaling:DescribeScalableTargets",outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_in_an_empty_namespace_say_nothing_scales() {
    // Other tests fill moto's `lambda` namespace; a moto account of its own
    // has none. (moto 5.2.5 has no `elasticache` namespace at all.)
    let account = fresh_account();
    let app = spawn_app(Options {
        aws_endpoint: Some(account_proxy(account).await),
        ..Options::default()
    })
    .await;
    app.command("policies lambda", "U1", "C0NOPOLICIES").await;
    let post = app
        .slack
        .wait_for(30, "the answer", |s| {
            s.posts("C0NOPOLICIES").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(
        text.contains(
            "No scaling policies and no scalable targets in the `lambda` namespace: nothing here scales automatically."
        ),
        "{text}"
    );
    assert!(
        text.contains("*Scalable targets (min – max)*\\nnone registered"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_failure_is_reported_as_a_sentence() {
    // moto 5.2.5 has no DescribeScalingActivities: it answers with an
    // error, which must reach the channel as a sentence naming the call.
    // The listing itself is covered by the unit tests in activities.rs and
    // the SDK-mock tests in src/cloud/aws/autoscaling.rs.
    let app = spawn_app(Options::default()).await;
    let ack = app.command("activities 5", "U1", "C0ACTIVITIES").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("/scale activities 5"),
        "{ack}"
    );
    let post = app
        .slack
        .wait_for(30, "the failure", |s| {
            s.posts("C0ACTIVITIES").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(text.contains("Could not run /scale activities 5"), "{text}");
    assert!(
        text.contains("application-autoscaling:DescribeScalingActivities"),
        "{text}"
    );
    assert_eq!(app.finished_outcome("activities 5").await, "failed");
    app.stop().await;
}
