//! The Cloud port: the typed AWS operations the runbooks need. The engine
//! only sees this trait; [`aws::AwsCloud`] implements it with the official
//! SDK.

pub mod aws;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::FunctionName;

/// One metric series to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// Starts with a lowercase letter; letters, digits and `_` only.
    pub id: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub stat: String,
    pub period_seconds: u32,
}

/// Several queries over one time range, fetched in one `GetMetricData`
/// exchange (one call unless AWS pages the answer).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRequest {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub queries: Vec<MetricQuery>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub id: String,
    /// Ascending by time.
    pub points: Vec<(DateTime<Utc>, f64)>,
}

impl Series {
    pub fn sum_since(&self, since: DateTime<Utc>) -> f64 {
        self.points
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, v)| v)
            .sum()
    }
    pub fn max(&self) -> Option<f64> {
        self.points.iter().map(|p| p.1).reduce(f64::max)
    }
}

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
}
