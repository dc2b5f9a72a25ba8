//! moto in server mode, one per test binary (or the one in `MOTO_URL`), and
//! helpers that seed it through the official AWS SDK.

#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, Utc};

pub const REGION: &str = "eu-central-1";
pub const ACCOUNT: &str = "123456789012";

static ENV: Once = Once::new();
static MOTO: OnceLock<String> = OnceLock::new();

/// Dummy credentials for the SDK: moto checks no signature, but the SDK
/// will not send an unsigned request.
pub fn aws_env() {
    ENV.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            if std::env::var_os(k).is_none() {
                // SAFETY: runs once, first thing in each test that needs
                // AWS, before any code of ours reads the environment from
                // another thread; std serialises its own env access.
                unsafe { std::env::set_var(k, v) };
            }
        }
    });
}

/// The test virtualenv that `scripts/test.sh` installs from
/// `tests/requirements*.txt`: moto, and the deploy files' validators.
pub fn venv() -> String {
    std::env::var("SCALEBOT_VENV").unwrap_or_else(|_| "/var/tmp/scalebot-venv".into())
}

fn moto_binary() -> String {
    if let Ok(bin) = std::env::var("MOTO_SERVER") {
        return bin;
    }
    let venv = venv();
    let candidate = format!("{venv}/bin/moto_server");
    if std::path::Path::new(&candidate).exists() {
        return candidate;
    }
    panic!(
        "moto_server not found: run the suite with scripts/test.sh, which installs moto[server]==5.2.5 \
         into {venv}, or set MOTO_URL to a running moto server"
    );
}

/// The AWS endpoint for tests: moto behind the CloudWatch CBOR translator.
pub fn url() -> String {
    super::cbor_proxy::start(moto_url())
}

/// The URL of a running moto server.
pub fn moto_url() -> String {
    aws_env();
    MOTO.get_or_init(|| {
        if let Ok(url) = std::env::var("MOTO_URL") {
            return url;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let bin = moto_binary();
        // The watchdog ends moto when this test binary exits, however it exits.
        let script = format!(
            "'{bin}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
            parent = std::process::id()
        );
        // The shell exits only with the watchdog; nobody waits for it.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        format!("http://127.0.0.1:{port}")
    })
    .clone()
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_env();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Creates a Lambda function (and the IAM role moto insists on).
pub async fn create_function(endpoint: &str, name: &str, reserved: Option<i32>) {
    let conf = sdk_config(endpoint).await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let role = "scalebot-test-lambda-role";
    // Tests run in parallel: whoever loses the race to create the role
    // reads the one the winner made.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let created = iam
        .create_role()
        .role_name(role)
        .assume_role_policy_document(policy)
        .send()
        .await;
    let role_arn = match created {
        Ok(r) => r.role().map(|r| r.arn().to_owned()).expect("role arn"),
        Err(_) => iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .expect("get role")
            .role()
            .map(|r| r.arn().to_owned())
            .expect("role arn"),
    };
    let lambda = aws_sdk_lambda::Client::new(&conf);
    lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(role_arn)
        .handler("index.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(tiny_zip()))
                .build(),
        )
        .send()
        .await
        .expect("create function");
    if let Some(n) = reserved {
        lambda
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(n)
            .send()
            .await
            .expect("put function concurrency");
    }
}

/// A valid zip holding one small file, made without a zip library: one
/// stored entry, its central directory and the end record.
pub fn tiny_zip() -> Vec<u8> {
    let name = b"index.py";
    let data = b"def handler(event, context):\n    return 1\n";
    let crc = crc32(data);
    let mut out = Vec::new();
    let le16 = |v: u16| v.to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    out.extend_from_slice(&le32(0x0403_4b50));
    out.extend_from_slice(&le16(20));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0x21));
    out.extend_from_slice(&le32(crc));
    out.extend_from_slice(&le32(data.len() as u32));
    out.extend_from_slice(&le32(data.len() as u32));
    out.extend_from_slice(&le16(name.len() as u16));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    let cd_start = out.len();
    out.extend_from_slice(&le32(0x0201_4b50));
    out.extend_from_slice(&le16(20));
    out.extend_from_slice(&le16(20));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0x21));
    out.extend_from_slice(&le32(crc));
    out.extend_from_slice(&le32(data.len() as u32));
    out.extend_from_slice(&le32(data.len() as u32));
    out.extend_from_slice(&le16(name.len() as u16));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le32(0));
    out.extend_from_slice(&le32(0));
    out.extend_from_slice(name);
    let cd_len = out.len() - cd_start;
    out.extend_from_slice(&le32(0x0605_4b50));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(0));
    out.extend_from_slice(&le16(1));
    out.extend_from_slice(&le16(1));
    out.extend_from_slice(&le32(cd_len as u32));
    out.extend_from_slice(&le32(cd_start as u32));
    out.extend_from_slice(&le16(0));
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Writes `points` of one `AWS/Lambda` metric for `function`.
pub async fn put_lambda_metric(
    endpoint: &str,
    function: &str,
    metric: &str,
    points: &[(DateTime<Utc>, f64)],
) {
    put_metric(
        endpoint,
        "AWS/Lambda",
        ("FunctionName", function),
        metric,
        points,
    )
    .await;
}

/// Writes `points` of one metric with one dimension.
pub async fn put_metric(
    endpoint: &str,
    namespace: &str,
    dimension: (&str, &str),
    metric: &str,
    points: &[(DateTime<Utc>, f64)],
) {
    put_metric_dims(endpoint, namespace, &[dimension], metric, points).await;
}

/// `put_metric` for a metric with several dimensions (a Lambda alias's
/// metrics carry `FunctionName` and `Resource`).
pub async fn put_metric_dims(
    endpoint: &str,
    namespace: &str,
    dimensions: &[(&str, &str)],
    metric: &str,
    points: &[(DateTime<Utc>, f64)],
) {
    let conf = sdk_config(endpoint).await;
    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let dimensions: Vec<Dimension> = dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(*value).build())
        .collect();
    for chunk in points.chunks(500) {
        let data = chunk
            .iter()
            .map(|(t, v)| {
                MetricDatum::builder()
                    .metric_name(metric)
                    .set_dimensions(Some(dimensions.clone()))
                    .timestamp(aws_smithy_types::DateTime::from_millis(
                        t.timestamp_millis(),
                    ))
                    .value(*v)
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("put metric data");
    }
}

/// A day of metrics for `function`, one point a minute, ending a minute
/// before `now`: invocations with a daily rhythm, concurrency that follows
/// them, and a throttling episode in the last four minutes (50 a minute,
/// 200 in all) while concurrency sits at `reserved`.
pub async fn seed_day_with_throttling(
    endpoint: &str,
    function: &str,
    now: DateTime<Utc>,
    reserved: f64,
) {
    let minutes = 24 * 60;
    let mut invocations = Vec::new();
    let mut concurrency = Vec::new();
    let mut throttles = Vec::new();
    for k in (1..=minutes).rev() {
        let t = now - chrono::Duration::minutes(k);
        let phase = (k as f64 / minutes as f64) * std::f64::consts::TAU;
        let inv = if k <= 30 {
            400.0
        } else {
            250.0 + 150.0 * phase.sin()
        };
        let conc = if k <= 4 {
            reserved
        } else {
            (inv / 6.0).round().min(reserved - 5.0)
        };
        invocations.push((t, inv));
        concurrency.push((t, conc));
        throttles.push((t, if k <= 4 { 50.0 } else { 0.0 }));
    }
    put_lambda_metric(endpoint, function, "Invocations", &invocations).await;
    put_lambda_metric(endpoint, function, "ConcurrentExecutions", &concurrency).await;
    put_lambda_metric(endpoint, function, "Throttles", &throttles).await;
}

/// The subnets of moto's default VPC in [`REGION`], which RDS Proxy needs
/// (moto checks that they exist). The crate has no EC2 client, so this is
/// one EC2 query-protocol call; moto routes it by the credential scope in
/// the Authorization header and checks no signature.
pub async fn default_subnets() -> Vec<String> {
    let body = "Action=DescribeSubnets&Version=2016-11-15\
                &Filter.1.Name=default-for-az&Filter.1.Value.1=true";
    let xml = reqwest::Client::new()
        .post(format!("{}/", moto_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .body(body)
        .send()
        .await
        .expect("DescribeSubnets")
        .text()
        .await
        .expect("DescribeSubnets body");
    let subnets: Vec<String> = xml
        .split("<subnetId>")
        .skip(1)
        .filter_map(|s| s.split("</subnetId>").next())
        .map(str::to_owned)
        .collect();
    assert!(!subnets.is_empty(), "moto has no default subnets: {xml}");
    subnets
}

/// Queues Cost Explorer answers: moto hands out one per distinct
/// `GetCostAndUsage` request body, in order.
pub async fn queue_cost_and_usage(results: serde_json::Value) {
    let status = reqwest::Client::new()
        .post(format!(
            "{}/moto-api/static/ce/cost-and-usage-results",
            moto_url()
        ))
        .json(&serde_json::json!({ "results": results }))
        .send()
        .await
        .expect("queue cost and usage results")
        .status();
    assert_eq!(status.as_u16(), 201, "moto refused the cost results");
}

/// Queues one Cost Explorer answer (daily BlendedCost grouped by service)
/// in a moto account of the test's own, so that no other test's cost
/// request can take it.
pub async fn queue_cost_and_usage_in(account: &str, results_by_time: Vec<serde_json::Value>) {
    let status = reqwest::Client::new()
        .post(format!(
            "{}/moto-api/static/ce/cost-and-usage-results",
            moto_url()
        ))
        .json(&serde_json::json!({
            "account_id": account,
            "results": [{
                "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
                "ResultsByTime": results_by_time,
                "DimensionValueAttributes": []
            }]
        }))
        .send()
        .await
        .expect("queue cost and usage results")
        .status();
    assert_eq!(status.as_u16(), 201, "moto refused the cost results");
}

/// The function's reserved concurrency as AWS (moto) holds it.
pub async fn reserved(endpoint: &str, function: &str) -> Option<i32> {
    let conf = sdk_config(endpoint).await;
    aws_sdk_lambda::Client::new(&conf)
        .get_function_concurrency()
        .function_name(function)
        .send()
        .await
        .expect("get function concurrency")
        .reserved_concurrent_executions()
}

/// Changes reserved concurrency behind the bot's back (for drift tests).
pub async fn set_reserved(endpoint: &str, function: &str, value: i32) {
    let conf = sdk_config(endpoint).await;
    aws_sdk_lambda::Client::new(&conf)
        .put_function_concurrency()
        .function_name(function)
        .reserved_concurrent_executions(value)
        .send()
        .await
        .expect("put function concurrency");
}

/// Version 1 and alias `live`, as provisioned concurrency would target.
pub async fn function_with_alias(name: &str) -> String {
    function_with_alias_at(&url(), name).await
}

/// The same, against another endpoint (e.g. a per-test moto account).
pub async fn function_with_alias_at(endpoint: &str, name: &str) -> String {
    create_function(endpoint, name, None).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk_config(endpoint).await);
    let version = lambda
        .publish_version()
        .function_name(name)
        .send()
        .await
        .expect("publish version")
        .version()
        .expect("a version number")
        .to_owned();
    lambda
        .create_alias()
        .function_name(name)
        .name("live")
        .function_version(version)
        .send()
        .await
        .expect("create alias");
    format!("function:{name}:live")
}

/// A small PostgreSQL RDS instance.
pub async fn create_db_instance(endpoint: &str, id: &str) {
    aws_sdk_rds::Client::new(&sdk_config(endpoint).await)
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .master_username("scalebot")
        .master_user_password("not-a-real-password")
        .allocated_storage(20)
        .send()
        .await
        .expect("create DB instance");
}

/// An RDS proxy named `name` with `db` as its registered target, as the
/// bot finds proxies (the secret, role and subnets are moto's defaults).
pub async fn create_proxy(name: &str, db: &str) {
    let rds = aws_sdk_rds::Client::new(&sdk_config(&url()).await);
    rds.create_db_proxy()
        .db_proxy_name(name)
        .engine_family(aws_sdk_rds::types::EngineFamily::Postgresql)
        .auth(
            aws_sdk_rds::types::UserAuthConfig::builder()
                .auth_scheme(aws_sdk_rds::types::AuthScheme::Secrets)
                .secret_arn(format!(
                    "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf"
                ))
                .build(),
        )
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/rds-proxy"))
        .set_vpc_subnet_ids(Some(default_subnets().await.into_iter().take(2).collect()))
        .require_tls(true)
        .send()
        .await
        .expect("create DB proxy");
    rds.register_db_proxy_targets()
        .db_proxy_name(name)
        .target_group_name("default")
        .db_instance_identifiers(db)
        .send()
        .await
        .expect("register the proxy's target");
}
