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
mod costs;
mod metrics;
pub mod traffic;
mod world;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};

pub use clock::{ManualClock, SimClock};
use metrics::series;
pub use traffic::Drill;
use traffic::{Timeline, Traffic};
use world::{ACCOUNT, World};
pub use world::{CACHE_GROUP, DATABASE};

use crate::clock::Clock;
use crate::cloud::{
    AccountConcurrency, AlarmState, Cloud, CloudError, DailyCost, DbInstance, DbProxy,
    MetricRequest, NewDbProxy, ProvisionedConfig, ReplicationGroup, RestartOutcome, ScalableTarget,
    ScalingActivity, ScalingPolicy, Series,
};
use crate::domain::FunctionName;

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
        Self {
            world: Mutex::new(World::runbook(seed, now)),
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
            instance_class: "db.t3.micro".into(),
            parameter_group: Some("default.postgres16".into()),
        })
    }

    async fn db_proxy_targets(&self, proxy: &str) -> Result<Vec<String>, CloudError> {
        // Every proxy of the simulated account is made for its one database.
        if self.world().proxies.iter().any(|p| p.name == proxy) {
            Ok(vec![DATABASE.to_owned()])
        } else {
            Err(self.not_found(format!("RDS proxy {proxy}")))
        }
    }

    async fn db_parameter(&self, _group: &str, _name: &str) -> Result<Option<String>, CloudError> {
        // The simulated database keeps its engine's default parameters.
        Ok(None)
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
        Ok(costs::daily(
            &traffic,
            replicas,
            self.price,
            start..end,
            now,
        ))
    }

    async fn replication_group(&self, id: &str) -> Result<ReplicationGroup, CloudError> {
        if id != CACHE_GROUP {
            return Err(self.not_found(format!("ElastiCache replication group {id}")));
        }
        Ok(ReplicationGroup {
            id: id.to_owned(),
            status: "available".into(),
            replicas: self.world().replicas,
            members: vec![format!("{id}-001")],
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
