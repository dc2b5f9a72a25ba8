//! The Cloud port on the official AWS SDK crates.
//!
//! Retries with backoff and timeouts come from the SDK's standard retry
//! mode; this module turns what is left of a failure into a [`CloudError`]
//! sentence and counts every call by operation and outcome.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, TimeZone, Utc};

use super::{
    AccountConcurrency, AlarmState, Cloud, CloudError, DailyCost, DbInstance, DbProxy,
    MetricRequest, NewDbProxy, ProvisionedConfig, ReplicationGroup, RestartOutcome, ScalableTarget,
    ScalingActivity, ScalingPolicy, Series,
};
use crate::config::AwsSettings;
use crate::domain::FunctionName;
use crate::metrics::Metrics;

pub struct AwsCloud {
    cloudwatch: aws_sdk_cloudwatch::Client,
    lambda: aws_sdk_lambda::Client,
    region: String,
    metrics: Arc<Metrics>,
}

impl AwsCloud {
    /// Credentials come from the standard chain (environment, profile, SSO,
    /// instance or task role); the endpoint from `aws.endpoint_url` or the
    /// standard `AWS_ENDPOINT_URL` variables.
    pub async fn new(settings: &AwsSettings, metrics: Arc<Metrics>) -> Self {
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
            loader = loader.endpoint_url(url);
        }
        let shared = loader.load().await;
        Self {
            cloudwatch: aws_sdk_cloudwatch::Client::new(&shared),
            lambda: aws_sdk_lambda::Client::new(&shared),
            region: settings.region.clone(),
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
            match code.as_str() {
                "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId" => CloudError::AccessDenied {
                    action: action.into(),
                },
                "ResourceNotFoundException" | "ResourceNotFound" | "NotFound" => {
                    CloudError::NotFound {
                        what: what(),
                        region: region.into(),
                    }
                }
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
    }
}

#[async_trait]
impl Cloud for AwsCloud {
    async fn metric_data(&self, request: &MetricRequest) -> Result<Vec<Series>, CloudError> {
        const ACTION: &str = "cloudwatch:GetMetricData";
        let queries: Vec<MetricDataQuery> = request
            .queries
            .iter()
            .map(|q| {
                let metric = Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(&q.metric)
                    .set_dimensions(Some(
                        q.dimensions
                            .iter()
                            .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                            .collect(),
                    ))
                    .build();
                MetricDataQuery::builder()
                    .id(&q.id)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(q.period_seconds as i32)
                            .stat(&q.stat)
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut series: Vec<Series> = request
            .queries
            .iter()
            .map(|q| Series {
                id: q.id.clone(),
                points: Vec::new(),
            })
            .collect();
        let mut next_token: Option<String> = None;
        // AWS pages large answers; a bound keeps a misbehaving endpoint from
        // looping forever.
        for _page in 0..100 {
            let result = self
                .cloudwatch
                .get_metric_data()
                .start_time(to_smithy(request.start))
                .end_time(to_smithy(request.end))
                .scan_by(ScanBy::TimestampAscending)
                .set_metric_data_queries(Some(queries.clone()))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || "the metric".into(), e));
            self.observe(ACTION, &result);
            let out = result?;
            for r in out.metric_data_results() {
                let Some(s) = series.iter_mut().find(|s| Some(s.id.as_str()) == r.id()) else {
                    continue;
                };
                s.points.extend(
                    r.timestamps()
                        .iter()
                        .zip(r.values())
                        .filter_map(|(t, v)| from_smithy(t).map(|t| (t, *v))),
                );
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => break,
            }
        }
        for s in &mut series {
            s.points.sort_by_key(|p| p.0);
        }
        Ok(series)
    }

    async fn reserved_concurrency(
        &self,
        function: &FunctionName,
    ) -> Result<Option<i32>, CloudError> {
        const ACTION: &str = "lambda:GetFunctionConcurrency";
        let result = self
            .lambda
            .get_function_concurrency()
            .function_name(function.as_str())
            .send()
            .await
            .map_err(|e| {
                classify(
                    ACTION,
                    &self.region,
                    || format!("Lambda function `{function}`"),
                    e,
                )
            });
        self.observe(ACTION, &result);
        Ok(result?.reserved_concurrent_executions())
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn account_concurrency(&self) -> Result<AccountConcurrency, CloudError> {
        Err(CloudError::Rejected {
            action: "lambda:GetAccountSettings".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn put_reserved_concurrency(
        &self,
        _function: &FunctionName,
        _value: i32,
    ) -> Result<(), CloudError> {
        Err(CloudError::Rejected {
            action: "lambda:PutFunctionConcurrency".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn delete_reserved_concurrency(
        &self,
        _function: &FunctionName,
    ) -> Result<(), CloudError> {
        Err(CloudError::Rejected {
            action: "lambda:DeleteFunctionConcurrency".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn provisioned_configs(
        &self,
        _function: &FunctionName,
    ) -> Result<Vec<ProvisionedConfig>, CloudError> {
        Err(CloudError::Rejected {
            action: "lambda:ListProvisionedConcurrencyConfigs".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn put_provisioned(
        &self,
        _function: &FunctionName,
        _qualifier: &str,
        _value: i32,
    ) -> Result<(), CloudError> {
        Err(CloudError::Rejected {
            action: "lambda:PutProvisionedConcurrencyConfig".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn delete_provisioned(
        &self,
        _function: &FunctionName,
        _qualifier: &str,
    ) -> Result<(), CloudError> {
        Err(CloudError::Rejected {
            action: "lambda:DeleteProvisionedConcurrencyConfig".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn restart_function(
        &self,
        _function: &FunctionName,
    ) -> Result<RestartOutcome, CloudError> {
        Err(CloudError::Rejected {
            action: "lambda:UpdateFunctionConfiguration".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn scalable_targets(&self, _namespace: &str) -> Result<Vec<ScalableTarget>, CloudError> {
        Err(CloudError::Rejected {
            action: "application-autoscaling:DescribeScalableTargets".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn register_scalable_target(&self, _target: &ScalableTarget) -> Result<(), CloudError> {
        Err(CloudError::Rejected {
            action: "application-autoscaling:RegisterScalableTarget".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn scaling_policies(&self, _namespace: &str) -> Result<Vec<ScalingPolicy>, CloudError> {
        Err(CloudError::Rejected {
            action: "application-autoscaling:DescribeScalingPolicies".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn put_scaling_policy(&self, _policy: &ScalingPolicy) -> Result<(), CloudError> {
        Err(CloudError::Rejected {
            action: "application-autoscaling:PutScalingPolicy".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn scaling_activities(
        &self,
        _namespace: &str,
        _max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError> {
        Err(CloudError::Rejected {
            action: "application-autoscaling:DescribeScalingActivities".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn alarm_states(&self, _names: &[String]) -> Result<Vec<AlarmState>, CloudError> {
        Err(CloudError::Rejected {
            action: "cloudwatch:DescribeAlarms".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn db_instance(&self, _id: &str) -> Result<DbInstance, CloudError> {
        Err(CloudError::Rejected {
            action: "rds:DescribeDBInstances".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn db_proxies(&self) -> Result<Vec<DbProxy>, CloudError> {
        Err(CloudError::Rejected {
            action: "rds:DescribeDBProxies".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn create_db_proxy(
        &self,
        _proxy: &NewDbProxy,
        _instance: &str,
    ) -> Result<(), CloudError> {
        Err(CloudError::Rejected {
            action: "rds:CreateDBProxy".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn daily_costs(
        &self,
        _start: chrono::NaiveDate,
        _end: chrono::NaiveDate,
    ) -> Result<Vec<DailyCost>, CloudError> {
        Err(CloudError::Rejected {
            action: "ce:GetCostAndUsage".into(),
            message: "not built yet".into(),
        })
    }

    // PLACEHOLDER(helper): replace with the SDK call.
    async fn replication_group(&self, _id: &str) -> Result<ReplicationGroup, CloudError> {
        Err(CloudError::Rejected {
            action: "elasticache:DescribeReplicationGroups".into(),
            message: "not built yet".into(),
        })
    }
}
