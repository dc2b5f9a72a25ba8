//! What the simulated account holds besides the traffic model's inputs,
//! and the runbook's resources it starts with.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::traffic::Traffic;
use crate::cloud::{AlarmState, DbProxy, ScalableTarget, ScalingActivity, ScalingPolicy};

/// The database and cache of the runbook.
pub const DATABASE: &str = "matbakh-db";
pub const CACHE_GROUP: &str = "matbakh-redis";
pub(super) const ACCOUNT: &str = "000000000000";

/// Everything in the account besides the traffic model's inputs.
pub(super) struct World {
    pub(super) traffic: Traffic,
    pub(super) targets: Vec<ScalableTarget>,
    pub(super) policies: Vec<ScalingPolicy>,
    pub(super) activities: Vec<ScalingActivity>,
    pub(super) proxies: Vec<DbProxy>,
    pub(super) replicas: i32,
    pub(super) alarms: BTreeMap<String, AlarmState>,
    pub(super) next_activity: u64,
}

impl World {
    /// The account as the runbook describes it: two Lambda targets and the
    /// cache's replicas, a target-tracking policy (with its quiet alarms) per
    /// Lambda target, and two recent scaling activities.
    pub(super) fn runbook(seed: u64, now: DateTime<Utc>) -> Self {
        let lambda_target = |f: &str, min, max| ScalableTarget {
            namespace: "lambda".into(),
            resource_id: format!("function:{f}:live"),
            dimension: "lambda:function:ProvisionedConcurrency".into(),
            min,
            max,
        };
        let targets = vec![
            lambda_target("persona-api", 5, 100),
            lambda_target("auth-handler", 2, 50),
            ScalableTarget {
                namespace: "elasticache".into(),
                resource_id: format!("replication-group/{CACHE_GROUP}"),
                dimension: "elasticache:replication-group:Replicas".into(),
                min: 1,
                max: 5,
            },
        ];
        let policy = |f: &str| ScalingPolicy {
            name: "production-lambda-scaling-policy".into(),
            namespace: "lambda".into(),
            resource_id: format!("function:{f}:live"),
            dimension: "lambda:function:ProvisionedConcurrency".into(),
            policy_type: "TargetTrackingScaling".into(),
            target_value: Some(0.7),
            predefined_metric: Some("LambdaProvisionedConcurrencyUtilization".into()),
            scale_in_cooldown: Some(300),
            scale_out_cooldown: Some(60),
            disable_scale_in: Some(false),
            alarms: vec![
                format!("TargetTracking-function:{f}:live-AlarmHigh"),
                format!("TargetTracking-function:{f}:live-AlarmLow"),
            ],
        };
        let activity = |n: u64, f: &str, hours: i64, from: i32, to: i32| ScalingActivity {
            id: format!("sim-activity-{n}"),
            resource_id: format!("function:{f}:live"),
            description: format!("Setting desired concurrency to {to}."),
            cause: format!(
                "monitor alarm TargetTracking-function:{f}:live-AlarmHigh in state ALARM triggered policy production-lambda-scaling-policy (from {from})"
            ),
            status: "Successful".into(),
            start: now - Duration::hours(hours),
        };
        let policies = vec![policy("persona-api"), policy("auth-handler")];
        // The target-tracking alarms AWS creates with each policy, quiet.
        let alarms = policies
            .iter()
            .flat_map(|p| p.alarms.iter())
            .map(|name| {
                let state = AlarmState {
                    name: name.clone(),
                    state: "OK".into(),
                    reason: "Threshold Crossed: no datapoint breached the threshold.".into(),
                };
                (name.clone(), state)
            })
            .collect();
        World {
            traffic: Traffic::runbook(seed),
            targets,
            policies,
            activities: vec![
                activity(2, "persona-api", 2, 8, 10),
                activity(1, "auth-handler", 5, 4, 5),
            ],
            proxies: Vec::new(),
            replicas: 2,
            alarms,
            next_activity: 3,
        }
    }
}
