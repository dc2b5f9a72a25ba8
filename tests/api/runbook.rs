//! The runbook's other changing commands through the real server: scaling
//! policy, restart (code untouched), a two-person batch with a function
//! that does not exist, an AWS failure in the middle of a batch, RDS Proxy,
//! and rollback from the bot's own snapshots.

use std::collections::HashMap;

use scalebot::domain::FunctionName;
use scalebot::settings_file::SettingsFile;

use crate::support::app::{INCIDENTS, Options, TestApp, message_text, spawn_app};
use crate::support::moto;

const OPS: &str = "U0OPERATOR";
const OPS2: &str = "U0OPERATOR2";
const REQ: &str = "U0REQUESTER";

async fn app_with(tweak: impl FnOnce(&mut SettingsFile) + Send + 'static) -> TestApp {
    spawn_app(Options {
        tweak: Some(Box::new(move |s: &mut SettingsFile| {
            s.roles.insert(
                "operators".into(),
                vec![OPS.into(), OPS2.into(), REQ.into()],
            );
            tweak(s);
        })),
        ..Options::default()
    })
    .await
}

async fn autoscaling() -> aws_sdk_applicationautoscaling::Client {
    aws_sdk_applicationautoscaling::Client::new(&moto::sdk_config(&moto::url()).await)
}

async fn policy_target(resource_id: &str) -> Option<f64> {
    autoscaling()
        .await
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Lambda)
        .resource_id(resource_id)
        .send()
        .await
        .expect("describe policies")
        .scaling_policies()
        .first()
        .and_then(|p| p.target_tracking_scaling_policy_configuration())
        .map(|c| c.target_value())
}

async fn confirm(app: &TestApp, command: &str, by: &str) -> String {
    app.command(command, REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan(command).await;
    app.click(by, INCIDENTS, "plan.confirm", &plan).await;
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_registers_its_target_and_a_rollback_restores_it() {
    let resource = moto::function_with_alias("policy-fn").await;
    // Its own environment name, so that its rollback touches only its own
    // policies in the moto account the tests share.
    let app = app_with(|s| s.runbook.environment = "rbtest".into()).await;

    app.command("policy policy-fn target 0.5", REQ, "C0OPS")
        .await;
    let (plan, post) = app.wait_plan("policy policy-fn target 0.5").await;
    let text = message_text(&post);
    assert!(text.contains("no policy → target 0.5"), "{text}");
    assert!(text.contains("has no scalable target yet"), "{text}");
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post(&format!("Plan `{plan}` executed"))
        .await;
    assert_eq!(policy_target(&resource).await, Some(0.5));

    // A second change; the snapshot taken before it holds 0.5.
    confirm(&app, "policy policy-fn target 0.8", OPS).await;
    app.wait_incident_post("policy `rbtest-lambda-scaling-policy` is target 0.8")
        .await;
    assert_eq!(policy_target(&resource).await, Some(0.8));

    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .format("%Y-%m-%d")
        .to_string();
    app.command(&format!("rollback {today} rbtest"), REQ, "C0OPS")
        .await;
    let (rollback, post) = app.wait_plan(&format!("rollback {today} rbtest")).await;
    assert!(
        message_text(&post).contains("target 0.8 → target 0.5"),
        "{post}"
    );
    app.click(OPS, INCIDENTS, "plan.confirm", &rollback).await;
    app.wait_incident_post(&format!("Plan `{rollback}` executed"))
        .await;
    assert_eq!(policy_target(&resource).await, Some(0.5));

    let ack = app.command("rollback 2001-01-01", REQ, "C0OPS").await;
    assert_eq!(ack["response_type"], "ephemeral");
    let refusal = app
        .slack
        .wait_for(20, "no snapshot", |s| {
            s.posts("C0OPS")
                .into_iter()
                .find(|p| message_text(p).contains("no snapshot of 2001-01-01"))
        })
        .await;
    assert!(
        message_text(&refusal).contains("snapshots exist for"),
        "{refusal}"
    );
    app.stop().await;
}

async fn config(
    name: &str,
) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
    aws_sdk_lambda::Client::new(&moto::sdk_config(&moto::url()).await)
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .expect("function configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_leaves_the_code_and_reports_a_failure_in_the_batch() {
    let aws = moto::url();
    moto::create_function(&aws, "restart-ok", None).await;
    moto::create_function(&aws, "restart-gone", None).await;
    let sha_before = config("restart-ok").await.code_sha256().map(str::to_owned);
    let app = app_with(|_| {}).await;

    app.command("restart restart-ok restart-gone", REQ, "C0OPS")
        .await;
    let (plan, post) = app.wait_plan("restart restart-ok restart-gone").await;
    assert!(message_text(&post).contains("code untouched"), "{post}");
    // The second function disappears between the plan and the click.
    aws_sdk_lambda::Client::new(&moto::sdk_config(&aws).await)
        .delete_function()
        .function_name("restart-gone")
        .send()
        .await
        .expect("delete function");
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    let result = app
        .wait_incident_post(&format!("Plan `{plan}` partly executed"))
        .await;
    let text = message_text(&result);
    assert!(
        text.contains("✅ `restart-ok` gets fresh execution environments"),
        "{text}"
    );
    assert!(text.contains("❌ `restart-gone` execution environments: Lambda function `restart-gone` does not exist"), "{text}");

    let after = config("restart-ok").await;
    assert_eq!(
        after.code_sha256().map(str::to_owned),
        sha_before,
        "the code is untouched"
    );
    let vars: HashMap<String, String> = after
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    assert!(vars.contains_key("SCALEBOT_RESTARTED_AT"), "{vars:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_runaway_is_one_plan_that_two_people_confirm() {
    let aws = moto::url();
    let resource = moto::function_with_alias("runaway-a").await;
    moto::set_reserved(&aws, "runaway-a", 50).await;
    moto::create_function(&aws, "runaway-b", None).await;
    let app = app_with(|s| {
        s.runbook.functions = ["runaway-a", "runaway-b", "runaway-missing"]
            .map(|f| FunctionName::parse(f).expect("a name"))
            .to_vec();
    })
    .await;
    // A provisioned-concurrency policy with a low target, made through the bot.
    let seed = confirm(&app, "policy runaway-a target 0.5", OPS).await;
    app.wait_incident_post(&format!("Plan `{seed}` executed"))
        .await;

    app.command("cost-runaway", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("cost-runaway").await;
    let text = message_text(&post);
    assert!(text.contains("target 0.5 → target 0.9"), "{text}");
    assert!(text.contains("`runaway-a` reserved concurrency"), "{text}");
    assert!(text.contains("50 → 10"), "{text}");
    assert!(text.contains("unreserved → 10"), "{text}");
    assert!(
        text.contains("Not found, skipped: `runaway-missing`"),
        "{text}"
    );
    assert!(
        text.contains("2 people in role `operators`, not the requester"),
        "{text}"
    );
    assert!(
        post["blocks"].to_string().contains("\"danger\""),
        "a destructive plan has a danger button"
    );

    app.click(REQ, INCIDENTS, "plan.confirm", &plan).await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post(&format!("approved plan `{plan}` (1 of 2)"))
        .await;
    assert_eq!(moto::reserved(&aws, "runaway-a").await, Some(50));
    app.click(OPS2, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post(&format!("Plan `{plan}` executed"))
        .await;
    assert_eq!(moto::reserved(&aws, "runaway-a").await, Some(10));
    assert_eq!(moto::reserved(&aws, "runaway-b").await, Some(10));
    assert_eq!(policy_target(&resource).await, Some(0.9));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_proxy_needs_its_config_and_registers_the_instance() {
    let rds = aws_sdk_rds::Client::new(&moto::sdk_config(&moto::url()).await);
    moto::create_db_instance(&moto::url(), "proxy-db").await;

    let bare = app_with(|_| {}).await;
    bare.command("rds proxy proxy-db", REQ, "C0BARE").await;
    let refusal = bare
        .slack
        .wait_for(20, "the refusal", |s| s.posts("C0BARE").into_iter().next())
        .await;
    let text = message_text(&refusal);
    assert!(
        text.contains("rds_proxy.secret_arn, rds_proxy.role_arn, rds_proxy.subnet_ids"),
        "{text}"
    );
    bare.stop().await;

    let subnets = moto::default_subnets().await;
    let app = app_with(move |s| {
        s.rds_proxy.secret_arn = format!(
            "arn:aws:secretsmanager:{}:{}:secret:db-AbCdEf",
            moto::REGION,
            moto::ACCOUNT
        );
        s.rds_proxy.role_arn = format!("arn:aws:iam::{}:role/rds-proxy", moto::ACCOUNT);
        s.rds_proxy.subnet_ids = subnets.into_iter().take(2).collect();
    })
    .await;
    app.command("rds proxy proxy-db", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("rds proxy proxy-db").await;
    assert!(
        message_text(&post).contains("`proxy-db-proxy` (POSTGRESQL, TLS required)"),
        "{post}"
    );
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("RDS Proxy `proxy-db-proxy` created with `proxy-db` as its target")
        .await;
    let proxies = rds
        .describe_db_proxies()
        .send()
        .await
        .expect("describe proxies");
    let proxy = proxies
        .db_proxies()
        .iter()
        .find(|p| p.db_proxy_name() == Some("proxy-db-proxy"))
        .expect("the proxy exists");
    assert_eq!(proxy.require_tls(), Some(true));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_lists_every_change_and_reports_each_outcome() {
    use crate::support::partial_cloud::PartialCloud;
    use std::sync::Arc;

    let aws = moto::url();
    moto::create_function(&aws, "down-a", Some(100)).await;
    moto::create_function(&aws, "down-b", None).await;
    let partial: Arc<std::sync::OnceLock<Arc<PartialCloud>>> = Arc::new(std::sync::OnceLock::new());
    let slot = partial.clone();
    let app = spawn_app(Options {
        wrap_cloud: Some(Box::new(move |inner| {
            let p = Arc::new(PartialCloud::new(inner));
            let _ = slot.set(p.clone());
            p
        })),
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            s.roles.insert(
                "operators".into(),
                vec![OPS.into(), OPS2.into(), REQ.into()],
            );
            s.runbook.functions = ["down-a", "down-b"]
                .map(|f| FunctionName::parse(f).expect("a name"))
                .to_vec();
            s.runbook.cache_group = "down-redis".into();
        })),
        ..Options::default()
    })
    .await;
    let cloud = partial.get().expect("the cloud was wrapped").clone();
    cloud.set_provisioned("down-a", "live", 40);
    cloud.set_provisioned("down-b", "3", 10);
    cloud.set_cache_target(scalebot::cloud::ScalableTarget {
        namespace: "elasticache".into(),
        resource_id: "replication-group/down-redis".into(),
        dimension: "elasticache:replication-group:Replicas".into(),
        min: 1,
        max: 5,
    });
    // AWS throttles one function's provisioned-concurrency call mid-batch.
    cloud.failing.lock().expect("lock").push("down-b".into());

    app.command("scale-down", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("scale-down").await;
    let text = message_text(&post);
    for expected in [
        "`down-a:live` provisioned concurrency",
        "40 → none",
        "`down-b:3` provisioned concurrency",
        "`down-a` reserved concurrency",
        "100 → 5",
        "unreserved → 5",
        "min 1 / max 5 → min 0 / max 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.click(OPS2, INCIDENTS, "plan.confirm", &plan).await;
    let result = app
        .wait_incident_post(&format!("Plan `{plan}` partly executed"))
        .await;
    let text = message_text(&result);
    assert!(
        text.contains("✅ provisioned concurrency of `down-a:live` is now none"),
        "{text}"
    );
    assert!(
        text.contains("❌ `down-b:3` provisioned concurrency: AWS refused"),
        "{text}"
    );
    assert!(
        text.contains("✅ reserved concurrency of `down-b` is now 5"),
        "{text}"
    );
    assert_eq!(moto::reserved(&aws, "down-a").await, Some(5));
    assert_eq!(moto::reserved(&aws, "down-b").await, Some(5));
    assert!(cloud.provisioned_of("down-a").is_empty());
    assert_eq!(
        cloud.provisioned_of("down-b").len(),
        1,
        "the failed change left it"
    );
    assert_eq!(cloud.cache_target().map(|t| (t.min, t.max)), Some((0, 1)));

    // The undo covers what changed, not what failed.
    cloud.failing.lock().expect("lock").clear();
    app.command(&format!("undo {plan}"), REQ, "C0OPS").await;
    let (_, undo) = app.wait_plan(&format!("undo {plan}")).await;
    let text = message_text(&undo);
    assert!(
        text.contains("`down-a:live` provisioned concurrency") && text.contains("none → 40"),
        "{text}"
    );
    assert!(
        !text.contains("`down-b:3` provisioned concurrency"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_concurrency_plan_shows_the_cost_and_runs_once_confirmed() {
    use crate::support::partial_cloud::PartialCloud;
    use std::sync::Arc;

    moto::create_function(&moto::url(), "pc-fn", None).await;
    let partial: Arc<std::sync::OnceLock<Arc<PartialCloud>>> = Arc::new(std::sync::OnceLock::new());
    let slot = partial.clone();
    let app = spawn_app(Options {
        wrap_cloud: Some(Box::new(move |inner| {
            let p = Arc::new(PartialCloud::new(inner));
            let _ = slot.set(p.clone());
            p
        })),
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            s.roles.insert("operators".into(), vec![OPS.into()]);
            s.functions.insert(
                FunctionName::parse("pc-fn").expect("a name"),
                scalebot::config::FunctionSettings {
                    memory_mb: 2048,
                    max_provisioned: 50,
                    ..Default::default()
                },
            );
        })),
        ..Options::default()
    })
    .await;
    let cloud = partial.get().expect("the cloud was wrapped").clone();
    cloud.set_provisioned("pc-fn", "live", 10);

    let ack = app.command("provisioned pc-fn live 80", REQ, "C0OPS").await;
    assert_eq!(ack["response_type"], "ephemeral");
    let refusal = app
        .slack
        .wait_for(20, "the guardrail", |s| s.posts("C0OPS").into_iter().next())
        .await;
    assert!(
        message_text(&refusal).contains("provisioned concurrency 1–50"),
        "{refusal}"
    );

    app.command("provisioned pc-fn live 20", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("provisioned pc-fn live 20").await;
    let text = message_text(&post);
    assert!(text.contains("10 → 20"), "{text}");
    // 10 and 20 environments × 2 GB × 3600 s × $0.0000041667.
    assert!(text.contains("$0.30/hour now → $0.60/hour after"), "{text}");
    assert_eq!(cloud.provisioned_of("pc-fn")[0].requested, 10);
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("provisioned concurrency of `pc-fn:live` is now 20")
        .await;
    assert_eq!(cloud.provisioned_of("pc-fn")[0].requested, 20);
    app.stop().await;
}
