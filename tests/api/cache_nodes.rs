//! The daily health check reads its cache nodes from the replication
//! group (`DescribeReplicationGroups`' member clusters) instead of
//! guessing `<group>-001`, which a cluster-mode group does not have (its
//! nodes are `<group>-0001-001`, …). All in moto, which names cluster-mode
//! members as AWS does.

use chrono::{Duration, Utc};

use crate::support::app::{Options, message_text, spawn_app};
use crate::support::moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_mode_groups_nodes_are_read_not_guessed() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let group = format!("sharded-{}", &id[..8]);
    aws_sdk_elasticache::Client::new(&moto::sdk_config(&moto::url()).await)
        .create_replication_group()
        .replication_group_id(&group)
        .replication_group_description("cluster-mode cache")
        .engine("redis")
        .cache_node_type("cache.t4g.micro")
        .cluster_mode(aws_sdk_elasticache::types::ClusterMode::Enabled)
        .num_node_groups(2)
        .replicas_per_node_group(1)
        .send()
        .await
        .expect("create replication group");
    let node = format!("{group}-0002-001");
    let now = Utc::now();
    let cpu: Vec<_> = (1..=23 * 6)
        .rev()
        .map(|k| (now - Duration::minutes(10 * k), 20.0))
        .collect();
    moto::put_metric(
        &moto::url(),
        "AWS/ElastiCache",
        ("CacheClusterId", &node),
        "EngineCPUUtilization",
        &cpu,
    )
    .await;
    let g = group.clone();
    let app = spawn_app(Options {
        tweak: Some(Box::new(move |s| {
            s.runbook.cache_group = g;
            s.reports.cache_clusters = Vec::new();
        })),
        ..Options::default()
    })
    .await;
    app.command("health", "U0OPS", "C0CACHE").await;
    let post = app
        .slack
        .wait_for(60, "the health check", |s| {
            s.posts("C0CACHE").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    for member in ["0001-001", "0001-002", "0002-001", "0002-002"] {
        assert!(
            text.contains(&format!("ElastiCache {group}-{member} engine CPU")),
            "{member}: {text}"
        );
    }
    assert!(
        text.contains(&format!(
            "ElastiCache {node} engine CPU*\\navg 20 %, peak 20 %"
        )),
        "{text}"
    );
    assert!(
        !text.contains(&format!("{group}-001 ")),
        "no guessed node: {text}"
    );
    app.stop().await;
}
