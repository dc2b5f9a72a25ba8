//! `AwsCloud` against moto in server mode: every operation moto 5.2.5
//! implements goes through the real SDK clients to the emulator and back.
//! What moto lacks (provisioned concurrency configs, GetAccountSettings,
//! DescribeScalingActivities, denials and throttling) is covered by the
//! SDK-mock unit tests in `src/cloud/aws/`.
//!
//! Tests share one moto and run in parallel, so every resource name is
//! unique to its test.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use chrono::NaiveDate;
use scalebot::aws::AwsCloud;
use scalebot::cloud::{
    AlarmState, Cloud, CloudError, DailyCost, NewDbProxy, ReplicationGroup, ScalableTarget,
    ScalingPolicy,
};
use scalebot::domain::FunctionName;
use scalebot::metrics::Metrics;
use scalebot::settings_file::SettingsFile;

use crate::support::{app, moto};

const PROVISIONED: &str = "lambda:function:ProvisionedConcurrency";

async fn cloud() -> (AwsCloud, Arc<Metrics>) {
    app::init();
    let mut settings = SettingsFile::default();
    settings.aws.endpoint_url = Some(moto::url().parse().expect("a URL"));
    settings.aws.region = moto::REGION.into();
    let metrics = Arc::new(Metrics::default());
    (AwsCloud::new(&settings.aws, metrics.clone()).await, metrics)
}

/// Lowercase letters and digits, so it fits every service's naming rules.
fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..10])
}

fn function(name: &str) -> FunctionName {
    FunctionName::parse(name).expect("a valid function name")
}

async fn sdk() -> aws_config::SdkConfig {
    moto::sdk_config(&moto::url()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_reserved_concurrency_put_get_delete() {
    let (cloud, metrics) = cloud().await;
    let name = unique("reserved");
    moto::create_function(&moto::url(), &name, None).await;
    let f = function(&name);

    assert_eq!(cloud.reserved_concurrency(&f).await, Ok(None));
    cloud
        .put_reserved_concurrency(&f, 42)
        .await
        .expect("put reserved concurrency");
    assert_eq!(cloud.reserved_concurrency(&f).await, Ok(Some(42)));
    cloud
        .delete_reserved_concurrency(&f)
        .await
        .expect("delete reserved concurrency");
    assert_eq!(cloud.reserved_concurrency(&f).await, Ok(None));

    let rendered = metrics.render();
    for line in [
        r#"scalebot_aws_calls_total{operation="lambda:PutFunctionConcurrency",outcome="ok"} 1"#,
        r#"scalebot_aws_calls_total{operation="lambda:DeleteFunctionConcurrency",outcome="ok"} 1"#,
        r#"scalebot_aws_calls_total{operation="lambda:GetFunctionConcurrency",outcome="ok"} 3"#,
    ] {
        assert!(rendered.contains(line), "{line} in\n{rendered}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_a_missing_function_is_not_found() {
    let (cloud, _) = cloud().await;
    let f = function(&unique("missing"));
    let what = format!("Lambda function `{f}`");
    let not_found = CloudError::NotFound {
        what,
        region: moto::REGION.into(),
    };
    assert_eq!(cloud.reserved_concurrency(&f).await, Err(not_found.clone()));
    assert_eq!(
        cloud.put_reserved_concurrency(&f, 5).await,
        Err(not_found.clone())
    );
    assert_eq!(cloud.restart_function(&f).await, Err(not_found));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_restart_keeps_code_and_variables_and_adds_the_marker() {
    let (cloud, _) = cloud().await;
    let name = unique("restart");
    moto::create_function(&moto::url(), &name, None).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk().await);
    lambda
        .update_function_configuration()
        .function_name(&name)
        .environment(
            aws_sdk_lambda::types::Environment::builder()
                .variables("DATABASE_URL", "postgres://db.internal/persona")
                .variables("LOG_LEVEL", "info")
                .build(),
        )
        .send()
        .await
        .expect("seed environment");
    let before = lambda
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .expect("configuration before");

    let outcome = cloud
        .restart_function(&function(&name))
        .await
        .expect("restart");

    let after = lambda
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .expect("configuration after");
    let sha = before.code_sha256().expect("moto reports CodeSha256");
    assert_eq!(outcome.code_sha256_before, sha);
    assert_eq!(outcome.code_sha256_after, sha);
    assert_eq!(after.code_sha256(), Some(sha), "the code is untouched");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&outcome.marker).is_ok(),
        "marker is RFC 3339: {}",
        outcome.marker
    );
    let vars: HashMap<String, String> = after
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let expected: HashMap<String, String> = [
        ("DATABASE_URL", "postgres://db.internal/persona"),
        ("LOG_LEVEL", "info"),
        ("SCALEBOT_RESTARTED_AT", outcome.marker.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(vars, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_scalable_target_register_and_describe() {
    let (cloud, _) = cloud().await;
    let resource_id = moto::function_with_alias(&unique("target")).await;
    let mut target = ScalableTarget {
        namespace: "lambda".into(),
        resource_id: resource_id.clone(),
        dimension: PROVISIONED.into(),
        min: 2,
        max: 20,
    };
    cloud
        .register_scalable_target(&target)
        .await
        .expect("register");
    let find = |all: Vec<ScalableTarget>| all.into_iter().find(|t| t.resource_id == resource_id);
    let listed = find(cloud.scalable_targets("lambda").await.expect("describe"));
    assert_eq!(listed.as_ref(), Some(&target));

    // Registering again updates min and max in place.
    target.min = 5;
    target.max = 50;
    cloud
        .register_scalable_target(&target)
        .await
        .expect("re-register");
    let listed = find(cloud.scalable_targets("lambda").await.expect("describe"));
    assert_eq!(listed, Some(target));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_scaling_policy_round_trip() {
    let (cloud, _) = cloud().await;
    let resource_id = moto::function_with_alias(&unique("policy")).await;
    cloud
        .register_scalable_target(&ScalableTarget {
            namespace: "lambda".into(),
            resource_id: resource_id.clone(),
            dimension: PROVISIONED.into(),
            min: 1,
            max: 10,
        })
        .await
        .expect("register");
    let policy = ScalingPolicy {
        name: unique("tracking"),
        namespace: "lambda".into(),
        resource_id,
        dimension: PROVISIONED.into(),
        policy_type: "TargetTrackingScaling".into(),
        target_value: Some(0.7),
        predefined_metric: Some("LambdaProvisionedConcurrencyUtilization".into()),
        scale_in_cooldown: Some(120),
        scale_out_cooldown: Some(30),
        disable_scale_in: Some(false),
        // moto never creates alarms for Lambda targets.
        alarms: vec![],
    };
    cloud.put_scaling_policy(&policy).await.expect("put policy");
    let listed = cloud
        .scaling_policies("lambda")
        .await
        .expect("describe policies")
        .into_iter()
        .find(|p| p.name == policy.name);
    assert_eq!(listed, Some(policy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_db_instance_and_proxy() {
    let (cloud, metrics) = cloud().await;
    let instance = unique("persona-db");
    moto::create_db_instance(&moto::url(), &instance).await;
    let rds = aws_sdk_rds::Client::new(&sdk().await);

    let db = cloud.db_instance(&instance).await.expect("db instance");
    assert_eq!(db.id, instance);
    assert_eq!(db.engine, "postgres");
    assert_eq!(db.status, "available");
    assert!(db.arn.ends_with(&format!(":db:{instance}")), "{}", db.arn);

    let proxy = NewDbProxy {
        name: unique("persona-proxy"),
        engine_family: "POSTGRESQL".into(),
        secret_arn: format!(
            "arn:aws:secretsmanager:{}:{}:secret:persona-db-AbCdEf",
            moto::REGION,
            moto::ACCOUNT
        ),
        role_arn: format!("arn:aws:iam::{}:role/rds-proxy", moto::ACCOUNT),
        subnet_ids: moto::default_subnets().await.into_iter().take(2).collect(),
        security_group_ids: vec![],
        require_tls: true,
    };
    cloud
        .create_db_proxy(&proxy, &instance)
        .await
        .expect("create proxy");

    let listed = cloud
        .db_proxies()
        .await
        .expect("describe proxies")
        .into_iter()
        .find(|p| p.name == proxy.name)
        .expect("the new proxy is listed");
    assert_eq!(listed.engine_family, "POSTGRESQL");
    assert!(listed.require_tls);
    assert_eq!(listed.status, "available");
    assert!(listed.endpoint.is_some());

    let targets = rds
        .describe_db_proxy_targets()
        .db_proxy_name(&proxy.name)
        .send()
        .await
        .expect("describe proxy targets");
    let registered: Vec<_> = targets
        .targets()
        .iter()
        .filter_map(|t| t.rds_resource_id())
        .collect();
    assert_eq!(registered, vec![instance.as_str()]);

    let rendered = metrics.render();
    for line in [
        r#"operation="rds:CreateDBProxy",outcome="ok"} 1"#,
        r#"operation="rds:RegisterDBProxyTargets",outcome="ok"} 1"#,
    ] {
        assert!(rendered.contains(line), "{line} in\n{rendered}");
    }

    let missing = unique("no-such-db");
    assert_eq!(
        cloud.db_instance(&missing).await,
        Err(CloudError::NotFound {
            what: format!("RDS instance `{missing}`"),
            region: moto::REGION.into(),
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_daily_costs_by_service_over_all_pages() {
    let (cloud, metrics) = cloud().await;
    // Two answers, handed out in order to the first request and to the one
    // carrying NextPageToken (moto keys each answer by request body).
    let day = |start: &str, end: &str, groups: serde_json::Value| {
        serde_json::json!({
            "TimePeriod": {"Start": start, "End": end},
            "Total": {},
            "Groups": groups,
            "Estimated": false
        })
    };
    let group = |service: &str, amount: &str| {
        serde_json::json!({
            "Keys": [service],
            "Metrics": {"BlendedCost": {"Amount": amount, "Unit": "USD"}}
        })
    };
    moto::queue_cost_and_usage(serde_json::json!([
        {
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
            "ResultsByTime": [day("2026-11-01", "2026-11-02", serde_json::json!([
                group("AWS Lambda", "12.5"),
                group("Amazon Relational Database Service", "30.25"),
            ]))],
            "DimensionValueAttributes": [],
            "NextPageToken": "page-2"
        },
        {
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
            "ResultsByTime": [day("2026-11-02", "2026-11-03", serde_json::json!([
                group("AWS Lambda", "14.75"),
            ]))],
            "DimensionValueAttributes": []
        }
    ]))
    .await;

    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let costs = cloud
        .daily_costs(d("2026-11-01"), d("2026-11-03"))
        .await
        .expect("daily costs");
    let cost = |day: &str, service: &str, amount: f64| DailyCost {
        day: d(day),
        service: service.into(),
        amount,
        unit: "USD".into(),
    };
    assert_eq!(
        costs,
        vec![
            cost("2026-11-01", "AWS Lambda", 12.5),
            cost("2026-11-01", "Amazon Relational Database Service", 30.25),
            cost("2026-11-02", "AWS Lambda", 14.75),
        ]
    );
    assert!(
        metrics
            .render()
            .contains(r#"operation="ce:GetCostAndUsage",outcome="ok"} 2"#),
        "two pages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_replication_group_counts_replicas() {
    let (cloud, _) = cloud().await;
    let id = unique("cache");
    let elasticache = aws_sdk_elasticache::Client::new(&sdk().await);
    // ReplicasPerNodeGroup rather than NumCacheClusters: moto 5.2.5 builds
    // the members from the former only.
    elasticache
        .create_replication_group()
        .replication_group_id(&id)
        .replication_group_description("persona cache")
        .engine("redis")
        .cache_node_type("cache.t4g.micro")
        .replicas_per_node_group(2)
        .send()
        .await
        .expect("create replication group");

    assert_eq!(
        cloud.replication_group(&id).await,
        Ok(ReplicationGroup {
            id: id.clone(),
            status: "available".into(),
            replicas: 2,
            members: (1..=3).map(|n| format!("{id}-00{n}")).collect(),
        })
    );
    let missing = unique("nocache");
    assert_eq!(
        cloud.replication_group(&missing).await,
        Err(CloudError::NotFound {
            what: format!("ElastiCache replication group `{missing}`"),
            region: moto::REGION.into(),
        })
    );
}

const HIGH_REASON: &str = "Threshold Crossed: 3 datapoints were greater than the threshold (0.7)";
const LOW_REASON: &str = "Threshold Crossed: no datapoints were less than the threshold (0.3)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_alarm_states_in_the_order_asked() {
    let (cloud, _) = cloud().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk().await);
    let high = unique("AlarmHigh");
    let low = unique("AlarmLow");
    for name in [&high, &low] {
        cw.put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/Lambda")
            .metric_name("ProvisionedConcurrencyUtilization")
            .statistic(Statistic::Average)
            .period(60)
            .evaluation_periods(3)
            .threshold(0.7)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("put metric alarm");
    }
    // New alarms start as INSUFFICIENT_DATA on AWS but as OK on moto
    // 5.2.5, so both states are set explicitly.
    for (name, state, reason) in [
        (&high, StateValue::Alarm, HIGH_REASON),
        (&low, StateValue::Ok, LOW_REASON),
    ] {
        cw.set_alarm_state()
            .alarm_name(name)
            .state_value(state)
            .state_reason(reason)
            .send()
            .await
            .expect("set alarm state");
    }

    let missing = unique("NoSuchAlarm");
    let states = cloud
        .alarm_states(&[low.clone(), missing, high.clone()])
        .await
        .expect("alarm states");
    assert_eq!(
        states,
        vec![
            AlarmState {
                name: low,
                state: "OK".into(),
                reason: LOW_REASON.into(),
            },
            AlarmState {
                name: high,
                state: "ALARM".into(),
                reason: HIGH_REASON.into(),
            },
        ]
    );
    assert_eq!(cloud.alarm_states(&[]).await, Ok(vec![]));
}
