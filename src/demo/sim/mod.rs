//! A simulated AWS account: the runbook's resources (five Lambda
//! functions, `matbakh-db`, `matbakh-redis`, daily costs) behind the same
//! [`Cloud`] trait as the real one, for the demo and for drills.
//!
//! Metrics come from the traffic model in [`traffic`], and they answer to
//! what the bot does: raising reserved concurrency stops throttles, an RDS
//! Proxy shrinks the database's connections, provisioned concurrency costs
//! what is configured. [`alarms`] evaluates CloudWatch-like alarms on the
//! same figures.

pub mod alarms;
pub mod clock;
pub mod traffic;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

pub use clock::{ManualClock, SimClock};
pub use traffic::Drill;
use traffic::{Timeline, Traffic};

use crate::clock::Clock;
use crate::cloud::{
    AccountConcurrency, AlarmState, Cloud, CloudError, DailyCost, DbInstance, DbProxy, MetricQuery,
    MetricRequest, NewDbProxy, ProvisionedConfig, ReplicationGroup, RestartOutcome, ScalableTarget,
    ScalingActivity, ScalingPolicy, Series,
};
use crate::domain::FunctionName;

/// The database and cache of the runbook.
pub const DATABASE: &str = "matbakh-db";
pub const CACHE_GROUP: &str = "matbakh-redis";
const ACCOUNT: &str = "000000000000";

/// Everything in the account besides the traffic model's inputs.
struct World {
    traffic: Traffic,
    targets: Vec<ScalableTarget>,
    policies: Vec<ScalingPolicy>,
    activities: Vec<ScalingActivity>,
    proxies: Vec<DbProxy>,
    replicas: i32,
    alarms: BTreeMap<String, AlarmState>,
    next_activity: u64,
}

pub struct SimCloud {
    world: Mutex<World>,
    clock: Arc<dyn Clock>,
    region: String,
    /// USD per GB-second of provisioned concurrency.
    price: f64,
}

impl SimCloud {
    pub fn new(seed: u64, clock: Arc<dyn Clock>, region: &str, price: f64) -> Self {
        let now = clock.now();
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
        Self {
            world: Mutex::new(World {
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
            }),
            clock,
            region: region.to_owned(),
            price,
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A panic elsewhere leaves the data as it was; keep serving it.
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A copy of the traffic model's inputs as they are now.
    pub fn traffic(&self) -> Traffic {
        self.world().traffic.clone()
    }

    /// Records the alarm states the evaluator decided (for `DescribeAlarms`).
    pub fn set_alarm_state(&self, name: &str, state: AlarmState) {
        self.world().alarms.insert(name.to_owned(), state);
    }

    fn not_found(&self, what: String) -> CloudError {
        CloudError::NotFound {
            what,
            region: self.region.clone(),
        }
    }

    fn function_exists(&self, w: &World, f: &FunctionName) -> Result<(), CloudError> {
        if w.traffic.functions.contains_key(f.as_str()) {
            Ok(())
        } else {
            Err(self.not_found(format!("Lambda function {f}")))
        }
    }

    fn activity(&self, w: &mut World, resource_id: &str, description: String, cause: &str) {
        let n = w.next_activity;
        w.next_activity += 1;
        w.activities.push(ScalingActivity {
            id: format!("sim-activity-{n}"),
            resource_id: resource_id.to_owned(),
            description,
            cause: cause.to_owned(),
            status: "Successful".into(),
            start: self.now(),
        });
    }
}

/// The value of one metric for the minute starting at `t`, or `None` when
/// the simulated account does not publish it.
fn sample(traffic: &Traffic, q: &MetricQuery, t: DateTime<Utc>) -> Option<f64> {
    let dim = |name: &str| {
        q.dimensions
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match q.namespace.as_str() {
        "AWS/Lambda" => {
            let m = traffic.function_minute(dim("FunctionName")?, t)?;
            match q.metric.as_str() {
                "Throttles" => Some(m.throttles),
                "Invocations" => Some(m.invocations),
                "ConcurrentExecutions" => Some(m.concurrent.round()),
                "ProvisionedConcurrentExecutions" => Some(m.concurrent.min(m.provisioned).round()),
                "ProvisionedConcurrencyUtilization" if m.provisioned > 0.0 => {
                    Some((m.concurrent.min(m.provisioned) / m.provisioned * 100.0).round() / 100.0)
                }
                "Errors" => Some(0.0),
                _ => None,
            }
        }
        "AWS/RDS" if dim("DBInstanceIdentifier") == Some(DATABASE) => match q.metric.as_str() {
            "DatabaseConnections" => Some(traffic.db_connections(t)),
            "CPUUtilization" => Some(traffic.db_cpu(t)),
            _ => None,
        },
        _ => None,
    }
}

/// One query's series over `[start, end)`, aggregated from per-minute
/// samples the way CloudWatch's statistic does. Only whole minutes count;
/// like CloudWatch, the current period is returned with the minutes it has
/// so far.
pub fn series(
    traffic: &Traffic,
    q: &MetricQuery,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Series {
    let period = i64::from(q.period_seconds.max(60));
    let minutes_per_period = period / 60;
    // Long periods are sampled every few minutes; sums are scaled back up.
    let stride = (minutes_per_period / 60).max(1);
    let mut points = Vec::new();
    let mut bucket = start.timestamp().div_euclid(period) * period;
    if bucket < start.timestamp() {
        bucket += period;
    }
    while bucket + 60 <= end.timestamp() {
        let values: Vec<f64> = (0..minutes_per_period)
            .step_by(stride as usize)
            .map(|m| bucket + m * 60)
            .filter(|minute| minute + 60 <= end.timestamp())
            .filter_map(|minute| DateTime::from_timestamp(minute, 0))
            .filter_map(|t| sample(traffic, q, t))
            .collect();
        if !values.is_empty()
            && let Some(at) = DateTime::from_timestamp(bucket, 0)
        {
            let n = values.len() as f64;
            let value = match q.stat.as_str() {
                "Sum" => values.iter().sum::<f64>() * stride as f64,
                "Average" => values.iter().sum::<f64>() / n,
                "Minimum" => values.iter().copied().fold(f64::INFINITY, f64::min),
                "SampleCount" => n * stride as f64,
                // Maximum and percentiles.
                _ => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            };
            points.push((at, value));
        }
        bucket += period;
    }
    Series {
        id: q.id.clone(),
        points,
    }
}

/// Daily list prices of the services besides Lambda, in USD.
const SERVICES: &[(&str, f64)] = &[
    ("Amazon Relational Database Service", 41.5),
    ("Amazon ElastiCache", 19.4),
    ("Amazon API Gateway", 7.9),
    ("AmazonCloudWatch", 3.2),
    ("Amazon Simple Storage Service", 2.1),
];

#[async_trait]
impl Cloud for SimCloud {
    async fn metric_data(&self, request: &MetricRequest) -> Result<Vec<Series>, CloudError> {
        let traffic = self.traffic();
        let end = request.end.min(self.now());
        Ok(request
            .queries
            .iter()
            .map(|q| series(&traffic, q, request.start, end))
            .collect())
    }

    async fn reserved_concurrency(
        &self,
        function: &FunctionName,
    ) -> Result<Option<i32>, CloudError> {
        let w = self.world();
        self.function_exists(&w, function)?;
        Ok(w.traffic
            .functions
            .get(function.as_str())
            .and_then(|f| *f.reserved.latest()))
    }

    async fn account_concurrency(&self) -> Result<AccountConcurrency, CloudError> {
        let now = self.now();
        let w = self.world();
        Ok(AccountConcurrency {
            limit: traffic::ACCOUNT_LIMIT,
            unreserved: traffic::ACCOUNT_LIMIT - w.traffic.reserved_total(now),
        })
    }

    async fn put_reserved_concurrency(
        &self,
        function: &FunctionName,
        value: i32,
    ) -> Result<(), CloudError> {
        let now = self.now();
        let mut w = self.world();
        self.function_exists(&w, function)?;
        let others: i32 = w
            .traffic
            .functions
            .iter()
            .filter(|(n, _)| n.as_str() != function.as_str())
            .filter_map(|(_, f)| *f.reserved.latest())
            .sum();
        if traffic::ACCOUNT_LIMIT - others - value < traffic::MIN_UNRESERVED {
            return Err(CloudError::Rejected {
                action: "PutFunctionConcurrency".into(),
                message: format!(
                    "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{}].",
                    traffic::MIN_UNRESERVED
                ),
            });
        }
        if let Some(f) = w.traffic.functions.get_mut(function.as_str()) {
            f.reserved.set(now, Some(value));
        }
        Ok(())
    }

    async fn delete_reserved_concurrency(&self, function: &FunctionName) -> Result<(), CloudError> {
        let now = self.now();
        let mut w = self.world();
        self.function_exists(&w, function)?;
        if let Some(f) = w.traffic.functions.get_mut(function.as_str()) {
            f.reserved.set(now, None);
        }
        Ok(())
    }

    async fn provisioned_configs(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<ProvisionedConfig>, CloudError> {
        let w = self.world();
        self.function_exists(&w, function)?;
        let Some(f) = w.traffic.functions.get(function.as_str()) else {
            return Ok(Vec::new());
        };
        Ok(f.provisioned
            .iter()
            .filter_map(|(q, tl)| {
                tl.latest().map(|v| ProvisionedConfig {
                    qualifier: q.clone(),
                    requested: v,
                    allocated: v,
                    status: "READY".into(),
                })
            })
            .collect())
    }

    async fn put_provisioned(
        &self,
        function: &FunctionName,
        qualifier: &str,
        value: i32,
    ) -> Result<(), CloudError> {
        if qualifier == "$LATEST" || qualifier.is_empty() {
            return Err(CloudError::Rejected {
                action: "PutProvisionedConcurrencyConfig".into(),
                message: "provisioned concurrency needs a version or an alias, not $LATEST".into(),
            });
        }
        let now = self.now();
        let mut w = self.world();
        self.function_exists(&w, function)?;
        if let Some(f) = w.traffic.functions.get_mut(function.as_str()) {
            f.provisioned
                .entry(qualifier.to_owned())
                .or_insert_with(|| Timeline::new(None))
                .set(now, Some(value));
        }
        Ok(())
    }

    async fn delete_provisioned(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<(), CloudError> {
        let now = self.now();
        let mut w = self.world();
        self.function_exists(&w, function)?;
        let config = w
            .traffic
            .functions
            .get_mut(function.as_str())
            .and_then(|f| f.provisioned.get_mut(qualifier))
            .filter(|tl| tl.latest().is_some());
        match config {
            Some(tl) => {
                tl.set(now, None);
                Ok(())
            }
            None => Err(self.not_found(format!(
                "provisioned concurrency config {function}:{qualifier}"
            ))),
        }
    }

    async fn restart_function(
        &self,
        function: &FunctionName,
    ) -> Result<RestartOutcome, CloudError> {
        let w = self.world();
        self.function_exists(&w, function)?;
        let sha = format!("sim-code-sha256-{function}");
        Ok(RestartOutcome {
            code_sha256_before: sha.clone(),
            code_sha256_after: sha,
            marker: self.now().to_rfc3339(),
        })
    }

    async fn scalable_targets(&self, namespace: &str) -> Result<Vec<ScalableTarget>, CloudError> {
        Ok(self
            .world()
            .targets
            .iter()
            .filter(|t| t.namespace == namespace)
            .cloned()
            .collect())
    }

    async fn register_scalable_target(&self, target: &ScalableTarget) -> Result<(), CloudError> {
        let mut w = self.world();
        let existing = w
            .targets
            .iter_mut()
            .find(|t| t.resource_id == target.resource_id && t.dimension == target.dimension);
        match existing {
            Some(t) => *t = target.clone(),
            None => w.targets.push(target.clone()),
        }
        self.activity(
            &mut w,
            &target.resource_id,
            format!(
                "Setting min capacity to {} and max capacity to {}.",
                target.min, target.max
            ),
            "scalable target registered by scalebot",
        );
        Ok(())
    }

    async fn scaling_policies(&self, namespace: &str) -> Result<Vec<ScalingPolicy>, CloudError> {
        Ok(self
            .world()
            .policies
            .iter()
            .filter(|p| p.namespace == namespace)
            .cloned()
            .collect())
    }

    async fn put_scaling_policy(&self, policy: &ScalingPolicy) -> Result<(), CloudError> {
        let mut w = self.world();
        let existing = w
            .policies
            .iter_mut()
            .find(|p| p.name == policy.name && p.resource_id == policy.resource_id);
        match existing {
            Some(p) => *p = policy.clone(),
            None => w.policies.push(policy.clone()),
        }
        Ok(())
    }

    async fn scaling_activities(
        &self,
        namespace: &str,
        max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError> {
        let w = self.world();
        let in_namespace = |a: &&ScalingActivity| match namespace {
            "lambda" => a.resource_id.starts_with("function:"),
            "elasticache" => a.resource_id.starts_with("replication-group/"),
            _ => false,
        };
        let mut found: Vec<ScalingActivity> =
            w.activities.iter().filter(in_namespace).cloned().collect();
        found.sort_by_key(|a| std::cmp::Reverse(a.start));
        found.truncate(usize::try_from(max.max(0)).unwrap_or(0));
        Ok(found)
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, CloudError> {
        let w = self.world();
        Ok(names
            .iter()
            .filter_map(|n| w.alarms.get(n).cloned())
            .collect())
    }

    async fn db_instance(&self, id: &str) -> Result<DbInstance, CloudError> {
        if id != DATABASE {
            return Err(self.not_found(format!("DB instance {id}")));
        }
        Ok(DbInstance {
            id: id.to_owned(),
            engine: "postgres".into(),
            status: "available".into(),
            arn: format!("arn:aws:rds:{}:{ACCOUNT}:db:{id}", self.region),
        })
    }

    async fn db_proxies(&self) -> Result<Vec<DbProxy>, CloudError> {
        Ok(self.world().proxies.clone())
    }

    async fn create_db_proxy(&self, proxy: &NewDbProxy, instance: &str) -> Result<(), CloudError> {
        if instance != DATABASE {
            return Err(self.not_found(format!("DB instance {instance}")));
        }
        let now = self.now();
        let mut w = self.world();
        if w.proxies.iter().any(|p| p.name == proxy.name) {
            return Err(CloudError::Rejected {
                action: "CreateDBProxy".into(),
                message: format!("DB proxy {} already exists", proxy.name),
            });
        }
        w.proxies.push(DbProxy {
            name: proxy.name.clone(),
            status: "available".into(),
            engine_family: proxy.engine_family.clone(),
            require_tls: proxy.require_tls,
            endpoint: Some(format!(
                "{}.proxy-sim.{}.rds.amazonaws.com",
                proxy.name, self.region
            )),
        });
        w.traffic.proxy_since.get_or_insert(now);
        Ok(())
    }

    async fn daily_costs(
        &self,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<DailyCost>, CloudError> {
        let now = self.now();
        let traffic = self.traffic();
        let replicas = self.world().replicas;
        let mut out = Vec::new();
        let mut day = start;
        while day < end {
            let from = day.and_time(chrono::NaiveTime::MIN).and_utc();
            let to = (from + Duration::days(1)).min(now);
            if from >= now {
                break;
            }
            let fraction = (to - from).num_seconds() as f64 / 86_400.0;
            let n = day.num_days_from_ce() as u64;
            let noisy = |name: &str, base: f64| {
                base * fraction * (1.0 + 0.05 * traffic::unit(traffic.seed, name, n))
            };
            let lambda =
                noisy("AWS Lambda", 14.0) + traffic.provisioned_spend(from, to, self.price);
            let mut add = |service: &str, amount: f64| {
                out.push(DailyCost {
                    day,
                    service: service.to_owned(),
                    amount: (amount * 100.0).round() / 100.0,
                    unit: "USD".into(),
                })
            };
            add("AWS Lambda", lambda);
            for (service, base) in SERVICES {
                let base = if *service == "Amazon ElastiCache" {
                    base * f64::from(1 + replicas) / 3.0
                } else {
                    *base
                };
                add(service, noisy(service, base));
            }
            day += Duration::days(1);
        }
        Ok(out)
    }

    async fn replication_group(&self, id: &str) -> Result<ReplicationGroup, CloudError> {
        if id != CACHE_GROUP {
            return Err(self.not_found(format!("ElastiCache replication group {id}")));
        }
        Ok(ReplicationGroup {
            id: id.to_owned(),
            status: "available".into(),
            replicas: self.world().replicas,
        })
    }
}

#[async_trait]
impl crate::drills::Drills for SimCloud {
    async fn start(&self, drill: Drill) -> Result<(), crate::drills::DrillError> {
        let now = self.now();
        let mut w = self.world();
        w.traffic.drills.push((now, drill));
        if drill == Drill::Cost {
            // The deploy that did it happened 30 hours ago, so yesterday's
            // bill already shows it, as a real cost runaway is found.
            let deployed = now - Duration::hours(30);
            let sizes: HashMap<&str, i32> = HashMap::from([
                ("persona-api", 300),
                ("vc-start", 150),
                ("vc-result", 150),
                ("auth-handler", 200),
            ]);
            for (name, f) in w.traffic.functions.iter_mut() {
                if let Some(size) = sizes.get(name.as_str()) {
                    f.provisioned
                        .entry("live".into())
                        .or_insert_with(|| Timeline::new(None))
                        .set(deployed, Some(*size));
                }
            }
        }
        tracing::info!(drill = drill.as_str(), at = %now, "drill started");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
