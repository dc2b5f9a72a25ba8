//! The Cloud port: the typed AWS operations the runbooks need. The engine
//! only sees this trait; [`aws::AwsCloud`] implements it with the official
//! SDK.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::FunctionName;

pub use crate::domain::metric::{MetricQuery, MetricRequest, Series};

/// Why an AWS call failed, in words an on-call engineer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    #[error("{what} does not exist in {region}")]
    NotFound { what: String, region: String },
    #[error(
        "the bot's AWS role is not allowed to call {action}; add it to the role's policy (deploy/iam-policy.json lists what the bot needs)"
    )]
    AccessDenied { action: String },
    #[error(
        "AWS is throttling {action} requests and still did after retries; try again in a minute"
    )]
    Throttled { action: String },
    #[error(
        "AWS did not answer {action} in time; try again, and check the bot's network path to AWS if it persists"
    )]
    Timeout { action: String },
    #[error("AWS refused {action}: {message}")]
    Rejected { action: String, message: String },
    #[error("could not reach AWS for {action}: {message}")]
    Unreachable { action: String, message: String },
}

impl CloudError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CloudError::NotFound { .. } => "not_found",
            CloudError::AccessDenied { .. } => "access_denied",
            CloudError::Throttled { .. } => "throttled",
            CloudError::Timeout { .. } => "timeout",
            CloudError::Rejected { .. } => "rejected",
            CloudError::Unreachable { .. } => "unreachable",
        }
    }
}

/// The account's Lambda concurrency (`GetAccountSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountConcurrency {
    pub limit: i32,
    /// What is left for functions without reserved concurrency.
    pub unreserved: i32,
}

/// A provisioned-concurrency config on one qualifier (version or alias).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedConfig {
    pub qualifier: String,
    pub requested: i32,
    pub allocated: i32,
    /// `IN_PROGRESS`, `READY` or `FAILED`.
    pub status: String,
}

/// What `restart_function` changed: the code is the same before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartOutcome {
    pub code_sha256_before: String,
    pub code_sha256_after: String,
    /// The value written to the `SCALEBOT_RESTARTED_AT` environment variable.
    pub marker: String,
}

/// An Application Auto Scaling scalable target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScalableTarget {
    /// `lambda`, `elasticache`, …
    pub namespace: String,
    /// `function:persona-api:live`, `replication-group/matbakh-redis`
    pub resource_id: String,
    /// `lambda:function:ProvisionedConcurrency`, `elasticache:replication-group:Replicas`
    pub dimension: String,
    pub min: i32,
    pub max: i32,
}

/// A target-tracking scaling policy, kept whole so that it can be restored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScalingPolicy {
    pub name: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    /// `TargetTrackingScaling` or `StepScaling`.
    pub policy_type: String,
    pub target_value: Option<f64>,
    /// A predefined metric type such as `LambdaProvisionedConcurrencyUtilization`.
    pub predefined_metric: Option<String>,
    pub scale_in_cooldown: Option<i32>,
    pub scale_out_cooldown: Option<i32>,
    pub disable_scale_in: Option<bool>,
    /// Names of the CloudWatch alarms the policy owns.
    pub alarms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingActivity {
    pub id: String,
    pub resource_id: String,
    pub description: String,
    pub cause: String,
    /// `Successful`, `Failed`, `InProgress`, …
    pub status: String,
    pub start: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInstance {
    pub id: String,
    pub engine: String,
    pub status: String,
    pub arn: String,
    /// `db.t3.micro`, for the engine's `max_connections` formula.
    pub instance_class: String,
    /// The DB parameter group applied to it.
    pub parameter_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbProxy {
    pub name: String,
    pub status: String,
    pub engine_family: String,
    pub require_tls: bool,
    pub endpoint: Option<String>,
}

/// What `CreateDBProxy` needs beyond the instance; from config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewDbProxy {
    pub name: String,
    /// `POSTGRESQL` or `MYSQL`.
    pub engine_family: String,
    pub secret_arn: String,
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub require_tls: bool,
}

/// One day's cost of one service (Cost Explorer, `BlendedCost`).
#[derive(Debug, Clone, PartialEq)]
pub struct DailyCost {
    pub day: chrono::NaiveDate,
    pub service: String,
    pub amount: f64,
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationGroup {
    pub id: String,
    pub status: String,
    /// Replicas per node group (shard), the scalable dimension's unit.
    pub replicas: i32,
    /// Its nodes' cache cluster ids (`MemberClusters`): `<group>-001` for
    /// a group without cluster mode, `<group>-0001-001` with it.
    pub members: Vec<String>,
}

#[async_trait]
pub trait Cloud: Send + Sync + 'static {
    /// Metric series through `GetMetricData`, following `NextToken`.
    async fn metric_data(&self, request: &MetricRequest) -> Result<Vec<Series>, CloudError>;

    /// The function's reserved concurrency (`None` when unreserved). Fails
    /// with [`CloudError::NotFound`] when the function does not exist.
    async fn reserved_concurrency(
        &self,
        function: &FunctionName,
    ) -> Result<Option<i32>, CloudError>;

    /// `GetAccountSettings`: the account's concurrency limit and what is unreserved.
    async fn account_concurrency(&self) -> Result<AccountConcurrency, CloudError>;

    /// `PutFunctionConcurrency`.
    async fn put_reserved_concurrency(
        &self,
        function: &FunctionName,
        value: i32,
    ) -> Result<(), CloudError>;

    /// `DeleteFunctionConcurrency`.
    async fn delete_reserved_concurrency(&self, function: &FunctionName) -> Result<(), CloudError>;

    /// `ListProvisionedConcurrencyConfigs` (all pages).
    async fn provisioned_configs(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<ProvisionedConfig>, CloudError>;

    /// `PutProvisionedConcurrencyConfig` on a version or alias (never `$LATEST`).
    async fn put_provisioned(
        &self,
        function: &FunctionName,
        qualifier: &str,
        value: i32,
    ) -> Result<(), CloudError>;

    /// `DeleteProvisionedConcurrencyConfig`.
    async fn delete_provisioned(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<(), CloudError>;

    /// Forces new execution environments without touching the code: reads
    /// the configuration, then `UpdateFunctionConfiguration` with the same
    /// environment plus `SCALEBOT_RESTARTED_AT`.
    async fn restart_function(&self, function: &FunctionName)
    -> Result<RestartOutcome, CloudError>;

    /// `DescribeScalableTargets` for a service namespace (all pages).
    async fn scalable_targets(&self, namespace: &str) -> Result<Vec<ScalableTarget>, CloudError>;

    /// `RegisterScalableTarget` (creates or updates min and max).
    async fn register_scalable_target(&self, target: &ScalableTarget) -> Result<(), CloudError>;

    /// `DescribeScalingPolicies` for a service namespace (all pages).
    async fn scaling_policies(&self, namespace: &str) -> Result<Vec<ScalingPolicy>, CloudError>;

    /// `PutScalingPolicy` with a target-tracking configuration.
    async fn put_scaling_policy(&self, policy: &ScalingPolicy) -> Result<(), CloudError>;

    /// `DescribeScalingActivities`, newest first, at most `max`.
    async fn scaling_activities(
        &self,
        namespace: &str,
        max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError>;

    /// `DescribeAlarms` for these names.
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, CloudError>;

    /// `DescribeDBInstances` for one instance.
    async fn db_instance(&self, id: &str) -> Result<DbInstance, CloudError>;

    /// `DescribeDBProxies`.
    async fn db_proxies(&self) -> Result<Vec<DbProxy>, CloudError>;

    /// `DescribeDBProxyTargets`: the RDS instances and clusters a proxy's
    /// default target group routes to, by identifier.
    async fn db_proxy_targets(&self, proxy: &str) -> Result<Vec<String>, CloudError>;

    /// `DescribeDBParameters`: one parameter's value in a DB parameter
    /// group, `None` when the group does not set it.
    async fn db_parameter(&self, group: &str, name: &str) -> Result<Option<String>, CloudError>;

    /// `CreateDBProxy`, then `RegisterDBProxyTargets` for the instance.
    async fn create_db_proxy(&self, proxy: &NewDbProxy, instance: &str) -> Result<(), CloudError>;

    /// `GetCostAndUsage`: daily `BlendedCost` by service for `[start, end)`.
    async fn daily_costs(
        &self,
        start: chrono::NaiveDate,
        end: chrono::NaiveDate,
    ) -> Result<Vec<DailyCost>, CloudError>;

    /// `DescribeReplicationGroups` for one group.
    async fn replication_group(&self, id: &str) -> Result<ReplicationGroup, CloudError>;
}
