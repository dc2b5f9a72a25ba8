//! Metric queries and the series they return: what the chart planner, the
//! Cloud port and the services share.

use chrono::{DateTime, Utc};

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
