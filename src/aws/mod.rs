//! The Cloud port on the official AWS SDK crates.
//!
//! Retries with backoff and timeouts come from the SDK's standard retry
//! mode; this module turns what is left of a failure into a [`CloudError`]
//! sentence and counts every call by operation and outcome. Each service's
//! calls live in a file of their own; the trait impl here only delegates.
//! `iam_actions.rs` lists those calls with the IAM actions they need;
//! `iam_policy.rs` makes the least-privilege policy for a config from it
//! (`scalebot iam-policy`).

mod alarms;
mod autoscaling;
mod cost;
mod elasticache;
pub mod iam_actions;
pub mod iam_policy;
mod lambda;
mod metric_data;
#[cfg(test)]
mod mocks;
mod provisioned;
mod rds;
mod restart;
pub mod sns_certs;
pub mod sns_intake;
pub mod sns_publish;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, TimeZone, Utc};

use crate::cloud::{
    AccountConcurrency, AlarmState, Cloud, CloudError, DailyCost, DbInstance, DbProxy,
    MetricRequest, NewDbProxy, ProvisionedConfig, ReplicationGroup, RestartOutcome, ScalableTarget,
    ScalingActivity, ScalingPolicy, Series,
};
use crate::config::AwsSettings;
use crate::domain::FunctionName;
use crate::metrics::Metrics;

/// One SDK client per service the runbooks touch, all from one shared
/// configuration so that region, credentials, retries and timeouts agree.
/// `sns` serves pages only (`sns_publish.rs`); it is here with the others
/// so that `tests/api/iam.rs` finds its calls for the IAM policy.
pub(crate) struct Clients {
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) autoscaling: aws_sdk_applicationautoscaling::Client,
    pub(crate) costexplorer: aws_sdk_costexplorer::Client,
    pub(crate) rds: aws_sdk_rds::Client,
    pub(crate) elasticache: aws_sdk_elasticache::Client,
    pub(crate) sns: aws_sdk_sns::Client,
}

impl Clients {
    pub(crate) fn new(shared: &aws_config::SdkConfig) -> Self {
        Self {
            cloudwatch: aws_sdk_cloudwatch::Client::new(shared),
            lambda: aws_sdk_lambda::Client::new(shared),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(shared),
            costexplorer: aws_sdk_costexplorer::Client::new(shared),
            rds: aws_sdk_rds::Client::new(shared),
            elasticache: aws_sdk_elasticache::Client::new(shared),
            sns: aws_sdk_sns::Client::new(shared),
        }
    }
}

/// The SDK configuration every client shares. Credentials come from the
/// standard chain (environment, profile, SSO, instance or task role); the
/// endpoint from `aws.endpoint_url` or the standard `AWS_ENDPOINT_URL`
/// variables.
pub(crate) async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(settings.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(
                    settings.operation_timeout_seconds.max(1),
                ))
                .operation_timeout(Duration::from_secs(
                    settings.operation_timeout_seconds.max(1) * 2,
                ))
                .build(),
        );
    if let Some(url) = &settings.endpoint_url {
        // The parsed URL of a bare host ends in `/`; the SDK joins its
        // own paths on.
        loader = loader.endpoint_url(url.as_str().trim_end_matches('/'));
    }
    loader.load().await
}

pub struct AwsCloud {
    cloudwatch: aws_sdk_cloudwatch::Client,
    lambda: aws_sdk_lambda::Client,
    autoscaling: aws_sdk_applicationautoscaling::Client,
    costexplorer: aws_sdk_costexplorer::Client,
    rds: aws_sdk_rds::Client,
    elasticache: aws_sdk_elasticache::Client,
    region: String,
    metrics: Arc<Metrics>,
}

impl AwsCloud {
    /// The clients of [`sdk_config`].
    pub async fn new(settings: &AwsSettings, metrics: Arc<Metrics>) -> Self {
        let shared = sdk_config(settings).await;
        Self::from_clients(Clients::new(&shared), settings.region.clone(), metrics)
    }

    /// Lets tests hand in clients wired to the SDK's own mocks, for the
    /// calls that no emulator answers.
    pub(crate) fn from_clients(clients: Clients, region: String, metrics: Arc<Metrics>) -> Self {
        Self {
            cloudwatch: clients.cloudwatch,
            lambda: clients.lambda,
            autoscaling: clients.autoscaling,
            costexplorer: clients.costexplorer,
            rds: clients.rds,
            elasticache: clients.elasticache,
            region,
            metrics,
        }
    }

    fn observe<T>(&self, action: &str, result: &Result<T, CloudError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        self.metrics.aws_call(action, outcome);
    }
}

/// AWS caps most list calls at a few dozen items a page; a bound keeps a
/// misbehaving endpoint (or a token that never ends) from looping forever.
const MAX_PAGES: usize = 100;

/// A page token worth sending back: AWS ends a listing with no token, and
/// some endpoints with an empty one.
fn next_page(token: Option<&str>) -> Option<String> {
    token.filter(|t| !t.is_empty()).map(str::to_owned)
}

fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

fn from_smithy(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    let nanos = t.subsec_nanos();
    Utc.timestamp_opt(t.secs(), nanos).single()
}

/// Maps an SDK failure to a sentence. `action` is the IAM action name, which
/// is also what a denied call needs to be granted.
pub(crate) fn classify<E, R>(
    action: &str,
    region: &str,
    what: impl FnOnce() -> String,
    err: SdkError<E, R>,
) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) => CloudError::Timeout {
            action: action.into(),
        },
        SdkError::DispatchFailure(f) => {
            if f.is_timeout() {
                CloudError::Timeout {
                    action: action.into(),
                }
            } else {
                CloudError::Unreachable {
                    action: action.into(),
                    message: if f.is_io() {
                        "connection failed".into()
                    } else {
                        "the request could not be sent".into()
                    },
                }
            }
        }
        SdkError::ServiceError(_)
        | SdkError::ResponseError(_)
        | SdkError::ConstructionFailure(_)
        | _ => {
            let code = err.code().unwrap_or_default().to_owned();
            let message = err.message().unwrap_or_default().to_owned();
            by_code(action, region, what, code, message)
        }
    }
}

/// An error AWS answered (or the SDK could not read), by its error code.
fn by_code(
    action: &str,
    region: &str,
    what: impl FnOnce() -> String,
    code: String,
    message: String,
) -> CloudError {
    match code.as_str() {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId" => CloudError::AccessDenied {
            action: action.into(),
        },
        // Each service names its own "no such thing"; the RDS and
        // ElastiCache codes are the query-protocol `Code` values.
        "ResourceNotFoundException"
        | "ResourceNotFound"
        | "NotFound"
        | "ProvisionedConcurrencyConfigNotFoundException"
        | "ObjectNotFoundException"
        | "DBInstanceNotFound"
        | "DBInstanceNotFoundFault"
        | "DBProxyNotFoundFault"
        | "DBProxyTargetGroupNotFoundFault"
        | "ReplicationGroupNotFoundFault" => CloudError::NotFound {
            what: what(),
            region: region.into(),
        },
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "LimitExceededException" => CloudError::Throttled {
            action: action.into(),
        },
        "" => CloudError::Unreachable {
            action: action.into(),
            message: "AWS sent an answer the SDK could not read".into(),
        },
        _ => CloudError::Rejected {
            action: action.into(),
            message: if message.is_empty() {
                code
            } else {
                format!("{message} ({code})")
            },
        },
    }
}

/// A request the SDK refused to build: a required field was missing. It
/// never reached AWS, so it is reported against the action it was for.
fn unbuildable(action: &str, err: aws_smithy_types::error::operation::BuildError) -> CloudError {
    CloudError::Rejected {
        action: action.into(),
        message: format!("the request is incomplete: {err}"),
    }
}

/// An answer that parsed but lacks what the operation promises.
fn incomplete_answer(action: &str, missing: &str) -> CloudError {
    CloudError::Unreachable {
        action: action.into(),
        message: format!("AWS answered without {missing}"),
    }
}

#[async_trait]
impl Cloud for AwsCloud {
    async fn metric_data(&self, request: &MetricRequest) -> Result<Vec<Series>, CloudError> {
        self.get_metric_data(request).await
    }

    async fn reserved_concurrency(
        &self,
        function: &FunctionName,
    ) -> Result<Option<i32>, CloudError> {
        self.get_function_concurrency(function).await
    }

    async fn account_concurrency(&self) -> Result<AccountConcurrency, CloudError> {
        self.get_account_settings().await
    }

    async fn put_reserved_concurrency(
        &self,
        function: &FunctionName,
        value: i32,
    ) -> Result<(), CloudError> {
        self.put_function_concurrency(function, value).await
    }

    async fn delete_reserved_concurrency(&self, function: &FunctionName) -> Result<(), CloudError> {
        self.delete_function_concurrency(function).await
    }

    async fn provisioned_configs(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<ProvisionedConfig>, CloudError> {
        self.list_provisioned_configs(function).await
    }

    async fn put_provisioned(
        &self,
        function: &FunctionName,
        qualifier: &str,
        value: i32,
    ) -> Result<(), CloudError> {
        self.put_provisioned_config(function, qualifier, value)
            .await
    }

    async fn delete_provisioned(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<(), CloudError> {
        self.delete_provisioned_config(function, qualifier).await
    }

    async fn restart_function(
        &self,
        function: &FunctionName,
    ) -> Result<RestartOutcome, CloudError> {
        self.restart(function).await
    }

    async fn scalable_targets(&self, namespace: &str) -> Result<Vec<ScalableTarget>, CloudError> {
        self.describe_scalable_targets(namespace).await
    }

    async fn register_scalable_target(&self, target: &ScalableTarget) -> Result<(), CloudError> {
        self.register_target(target).await
    }

    async fn scaling_policies(&self, namespace: &str) -> Result<Vec<ScalingPolicy>, CloudError> {
        self.describe_scaling_policies(namespace).await
    }

    async fn put_scaling_policy(&self, policy: &ScalingPolicy) -> Result<(), CloudError> {
        self.put_target_tracking_policy(policy).await
    }

    async fn scaling_activities(
        &self,
        namespace: &str,
        max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError> {
        self.describe_scaling_activities(namespace, max).await
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, CloudError> {
        self.describe_alarms(names).await
    }

    async fn db_instance(&self, id: &str) -> Result<DbInstance, CloudError> {
        self.describe_db_instance(id).await
    }

    async fn db_proxies(&self) -> Result<Vec<DbProxy>, CloudError> {
        self.describe_db_proxies().await
    }

    async fn db_proxy_targets(&self, proxy: &str) -> Result<Vec<String>, CloudError> {
        self.describe_db_proxy_targets(proxy).await
    }

    async fn db_parameter(&self, group: &str, name: &str) -> Result<Option<String>, CloudError> {
        self.describe_db_parameter(group, name).await
    }

    async fn create_db_proxy(&self, proxy: &NewDbProxy, instance: &str) -> Result<(), CloudError> {
        self.create_proxy_for_instance(proxy, instance).await
    }

    async fn daily_costs(
        &self,
        start: chrono::NaiveDate,
        end: chrono::NaiveDate,
    ) -> Result<Vec<DailyCost>, CloudError> {
        self.cost_by_service_per_day(start, end).await
    }

    async fn replication_group(&self, id: &str) -> Result<ReplicationGroup, CloudError> {
        self.describe_replication_group(id).await
    }
}
