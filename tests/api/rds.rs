//! `/scale rds connections` against the instance's `max_connections` (its
//! parameter group's number, else the engine's formula for its class), and
//! RDS Proxy found by its registered target rather than by the runbook's
//! `<db>-proxy` name; all in moto (5.2.5 has DescribeDBParameters and
//! DescribeDBProxyTargets).

use chrono::{Duration, Utc};

use crate::support::app::{INCIDENTS, Options, TestApp, message_text, spawn_app};
use crate::support::moto;

async fn rds() -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&moto::sdk_config(&moto::url()).await)
}

/// Three hours of connections at `base` a minute, then `recent` for the
/// last ten minutes.
async fn connections(db: &str, base: f64, recent: f64) {
    let now = Utc::now();
    let points: Vec<_> = (1..=180)
        .rev()
        .map(|k| {
            (
                now - Duration::minutes(k),
                if k <= 9 { recent } else { base },
            )
        })
        .collect();
    moto::put_metric(
        &moto::url(),
        "AWS/RDS",
        ("DBInstanceIdentifier", db),
        "DatabaseConnections",
        &points,
    )
    .await;
}

async fn reply(app: &TestApp, command: &str, channel: &str) -> (String, serde_json::Value) {
    app.command(command, "U0OPS", channel).await;
    let post = app
        .slack
        .wait_for(30, "the reply", |s| s.posts(channel).into_iter().next())
        .await;
    (message_text(&post), post)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_set_against_the_parameter_groups_max_connections() {
    let rds = rds().await;
    rds.create_db_parameter_group()
        .db_parameter_group_name("conn-limit-pg")
        .db_parameter_group_family("postgres16")
        .description("max_connections set by hand")
        .send()
        .await
        .expect("create parameter group");
    rds.modify_db_parameter_group()
        .db_parameter_group_name("conn-limit-pg")
        .parameters(
            aws_sdk_rds::types::Parameter::builder()
                .parameter_name("max_connections")
                .parameter_value("500")
                .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                .build(),
        )
        .send()
        .await
        .expect("set max_connections");
    rds.create_db_instance()
        .db_instance_identifier("limit-db")
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .db_parameter_group_name("conn-limit-pg")
        .master_username("scalebot")
        .master_user_password("not-a-real-password")
        .allocated_storage(20)
        .send()
        .await
        .expect("create DB instance");
    connections("limit-db", 40.0, 450.0).await;
    moto::create_db_instance(&moto::url(), "formula-db").await;
    connections("formula-db", 20.0, 30.0).await;
    let app = spawn_app(Options::default()).await;

    let (text, _) = reply(&app, "rds connections limit-db", "C0LIMIT").await;
    assert!(
        text.contains(
            "That is 90.0 % of max_connections 500 (parameter group `conn-limit-pg`): new connections \
             are refused at the limit"
        ),
        "{text}"
    );
    assert!(text.contains("*max_connections*\\n500"), "{text}");
    assert!(text.contains("the 3-hour median of 40"), "{text}");

    // No number in its (default) group: PostgreSQL's formula on 1 GiB.
    let (text, _) = reply(&app, "rds connections formula-db", "C0FORMULA").await;
    assert!(
        text.contains(
            "That is 26.8 % of max_connections 112 (postgres default \
             LEAST({DBInstanceClassMemory/9531392}, 5000) for db.t3.micro's 1 GiB, an upper estimate)."
        ),
        "{text}"
    );
    assert!(
        text.contains("*max_connections*\\n112 (estimate)"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_is_found_by_its_registered_target_whatever_its_name() {
    moto::create_db_instance(&moto::url(), "pooled-db").await;
    moto::create_db_instance(&moto::url(), "bare-db").await;
    let subnets = moto::default_subnets().await;
    // Named after nothing the runbook would guess.
    moto::create_proxy("shared-pool", "pooled-db").await;
    connections("pooled-db", 20.0, 25.0).await;
    let subnets_cfg: Vec<String> = subnets.into_iter().take(2).collect();
    let app = spawn_app(Options {
        tweak: Some(Box::new(move |s| {
            s.roles.insert("operators".into(), vec!["U0OPS".into()]);
            s.rds_proxy.secret_arn = format!(
                "arn:aws:secretsmanager:{}:{}:secret:db-AbCdEf",
                moto::REGION,
                moto::ACCOUNT
            );
            s.rds_proxy.role_arn = format!("arn:aws:iam::{}:role/rds-proxy", moto::ACCOUNT);
            s.rds_proxy.subnet_ids = subnets_cfg;
        })),
        ..Options::default()
    })
    .await;

    let (text, post) = reply(&app, "rds connections pooled-db", "C0POOLED").await;
    assert!(text.contains("RDS Proxy `shared-pool` fronts it"), "{text}");
    assert!(
        !post["blocks"].to_string().contains("Enable RDS Proxy"),
        "no second proxy offered: {post}"
    );
    // Creating one anyway is refused, naming the proxy that has the target.
    let (text, _) = reply(&app, "rds proxy pooled-db", "C0AGAIN").await;
    assert!(
        text.contains("RDS Proxy `shared-pool` already fronts `pooled-db`"),
        "{text}"
    );

    // A database no proxy routes to: step 2 is offered, other proxies named.
    let (text, post) = reply(&app, "rds connections bare-db", "C0BARE").await;
    assert!(
        text.contains("No RDS Proxy has `bare-db` as a registered target"),
        "{text}"
    );
    assert!(text.contains("`shared-pool`"), "{text}");
    assert!(
        post["blocks"].to_string().contains("rds proxy bare-db"),
        "{post}"
    );
    assert!(
        app.slack.posts(INCIDENTS).is_empty(),
        "read-only: no plan, no incident"
    );
    app.stop().await;
}
