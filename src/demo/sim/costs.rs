//! The simulated bill: Lambda's daily cost from the configured provisioned
//! concurrency, the other services from list prices, each with a little
//! noise that the seed fixes.

use std::ops::Range;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use super::traffic::{self, Traffic};
use crate::cloud::DailyCost;

/// Daily list prices of the services besides Lambda, in USD.
const SERVICES: &[(&str, f64)] = &[
    ("Amazon Relational Database Service", 41.5),
    ("Amazon ElastiCache", 19.4),
    ("Amazon API Gateway", 7.9),
    ("AmazonCloudWatch", 3.2),
    ("Amazon Simple Storage Service", 2.1),
];

/// The costs of each service per UTC day in `days`, up to `now` (today's
/// only as far as it has gone). `price` is USD per GB-second of provisioned
/// concurrency; the cache's cost follows its number of `replicas`.
pub(super) fn daily(
    traffic: &Traffic,
    replicas: i32,
    price: f64,
    days: Range<NaiveDate>,
    now: DateTime<Utc>,
) -> Vec<DailyCost> {
    let (start, end) = (days.start, days.end);
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
        let lambda = noisy("AWS Lambda", 14.0) + traffic.provisioned_spend(from, to, price);
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
    out
}
