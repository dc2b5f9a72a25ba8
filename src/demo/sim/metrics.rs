//! Metrics as CloudWatch would answer them: one value per minute from the
//! traffic model, aggregated into periods by the query's statistic.

use chrono::{DateTime, Utc};

use super::traffic::Traffic;
use super::world::DATABASE;
use crate::cloud::{MetricQuery, Series};

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
