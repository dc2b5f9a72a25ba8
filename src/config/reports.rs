//! `[reports]`: the runbook's routine operations as scheduled reports.

use chrono::{NaiveTime, Weekday};
use serde::Deserialize;

use super::values;
use crate::domain::FunctionName;

/// The reports posted to `channels.reports`, and when.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Post the reports on schedule (the `/scale health|review|capacity`
    /// commands work either way).
    pub enabled: bool,
    /// The time zone the report times are in; daylight saving is followed.
    #[serde(deserialize_with = "values::time_zone")]
    pub timezone: chrono_tz::Tz,
    /// Daily health check, every day at this local time (`HH:MM`).
    #[serde(deserialize_with = "values::time_of_day")]
    pub daily_at: NaiveTime,
    /// Weekly scaling-policy review: this weekday at `weekly_at`.
    #[serde(deserialize_with = "values::weekday")]
    pub weekly_day: Weekday,
    #[serde(deserialize_with = "values::time_of_day")]
    pub weekly_at: NaiveTime,
    /// Monthly capacity plan: the first `weekly_day` of each month at this time.
    #[serde(deserialize_with = "values::time_of_day")]
    pub monthly_at: NaiveTime,
    /// A report missed while the bot was down is posted once when it comes
    /// back within this many minutes of its time; later, it is skipped.
    pub catch_up_minutes: u64,
    /// How often the scheduler looks for a due report.
    #[serde(deserialize_with = "values::at_least_one")]
    pub check_interval_seconds: u64,
    /// A report chat refused (a 5xx) is tried again after this long (each
    /// try reads AWS again), until its catch-up window ends.
    #[serde(deserialize_with = "values::at_least_one")]
    pub retry_unposted_seconds: u64,
    /// The daily policy snapshots are kept this many days.
    #[serde(deserialize_with = "values::at_least_one")]
    pub snapshot_retention_days: u32,
    /// Functions in the reports; empty means `runbook.functions`.
    pub functions: Vec<FunctionName>,
    /// The RDS instance; empty means `runbook.database`.
    pub database: String,
    /// ElastiCache cluster ids (`CacheClusterId`, the replication group's
    /// nodes); empty means the members `runbook.cache_group` lists
    /// (`DescribeReplicationGroups`).
    pub cache_clusters: Vec<String>,
}
