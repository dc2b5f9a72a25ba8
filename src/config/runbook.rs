//! `[runbook]`, `[functions.<name>]` and `[escalation]`: what the runbook's
//! procedures and its escalation levels are tuned with.

use serde::{Deserialize, Deserializer};

use super::values;
use crate::domain::FunctionName;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookSettings {
    /// Run everything except the changing AWS call, and say so everywhere.
    pub dry_run: bool,
    /// A plan not confirmed within this many seconds expires.
    #[serde(deserialize_with = "values::at_least_one")]
    pub plan_ttl_seconds: u64,
    /// The floor of a proposed reserved-concurrency raise (the runbook's 100).
    pub throttles_raise_to: i32,
    /// A raise proposes at least the peak concurrency of the last
    /// `reserved_peak_window_minutes` times this headroom (rounded up).
    #[serde(deserialize_with = "headroom")]
    pub reserved_headroom: f64,
    #[serde(deserialize_with = "values::at_least_one")]
    pub reserved_peak_window_minutes: u64,
    /// The functions the batch procedures act on.
    pub functions: Vec<FunctionName>,
    /// The alias that carries provisioned concurrency and its scaling policy.
    pub default_alias: String,
    /// After a concurrency change, how often the metric is checked again
    /// (the runbook's `watch -n 30`) and for how long.
    pub monitor_interval_seconds: u64,
    pub monitor_max_minutes: u64,
    /// Cost runaway: the provisioned-concurrency utilization target to set
    /// (0.1–0.9; the runbook's `TargetValue=90.0` is out of range for this
    /// metric) and the reserved concurrency for every function.
    #[serde(deserialize_with = "utilization")]
    pub cost_runaway_target: f64,
    pub cost_runaway_reserved: i32,
    /// Emergency scale-down: reserved concurrency for every function.
    pub scale_down_reserved: i32,
    /// The ElastiCache replication group the scale-down and rollback touch.
    pub cache_group: String,
    /// The RDS instance of the RDS procedures and reports.
    pub database: String,
    /// The environment name used in policy names (`{env}-lambda-scaling-policy`).
    pub environment: String,
}

fn utilization<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.1..=0.9).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(
            "must be between 0.1 and 0.9 (a utilization fraction)",
        ))
    }
}

fn headroom<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (1.0..=10.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(
            "must be between 1.0 and 10.0 (a factor on the peak concurrency)",
        ))
    }
}

/// A function's guardrails. Its section is laid over the defaults'
/// `[functions."*"]`, so every key is there when this is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "FunctionSection")]
pub struct FunctionSettings {
    pub min_reserved: i32,
    pub max_reserved: i32,
    pub min_provisioned: i32,
    pub max_provisioned: i32,
    /// Memory size, for the provisioned-concurrency cost estimate.
    pub memory_mb: u32,
}

/// The section as written, before its limits are checked against each other.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionSection {
    min_reserved: i32,
    max_reserved: i32,
    min_provisioned: i32,
    max_provisioned: i32,
    memory_mb: u32,
}

impl TryFrom<FunctionSection> for FunctionSettings {
    type Error = &'static str;

    fn try_from(f: FunctionSection) -> Result<Self, Self::Error> {
        if f.min_reserved > f.max_reserved || f.min_reserved < 0 {
            return Err("min_reserved must be between 0 and max_reserved");
        }
        if f.min_provisioned > f.max_provisioned || f.min_provisioned < 0 {
            return Err("min_provisioned must be between 0 and max_provisioned");
        }
        Ok(Self {
            min_reserved: f.min_reserved,
            max_reserved: f.max_reserved,
            min_provisioned: f.min_provisioned,
            max_provisioned: f.max_provisioned,
            memory_mb: f.memory_mb,
        })
    }
}

impl Default for FunctionSettings {
    /// The defaults' `[functions."*"]`, which a unit test loads, so the
    /// panic below would be a broken build rather than a bad config.
    fn default() -> Self {
        match &*super::load::FUNCTION_DEFAULTS {
            Ok(f) => f.clone(),
            Err(e) => panic!("the embedded defaults are broken: {e}"),
        }
    }
}

/// The runbook's escalation levels, L1 to L4.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSettings {
    #[serde(deserialize_with = "four_levels")]
    pub levels: Vec<LevelSettings>,
    /// At this level the bot opens a channel of the incident's own and
    /// invites that level's people (none: never).
    pub dedicated_channel_at: Option<i64>,
    /// After an alarm returns to OK, the incident resolves itself when it
    /// stays quiet this long, unless someone keeps it open (none: never).
    pub resolve_after_ok_seconds: Option<u64>,
    /// Acknowledging stops the reminders at the current level; with this
    /// set it also stops the escalation clock until someone escalates.
    pub ack_stops_clock: bool,
    /// What makes a second alarm join an open incident: `alarm` (the same
    /// alarm name) or `resource` (the same function, database or cache,
    /// whichever alarm fired).
    pub join_by: JoinBy,
    /// Repeated notifications for an open incident within this window
    /// become one thread reply ("fired 37 more times"), so a storm does not
    /// flood the thread; every one is still stored.
    pub coalesce_seconds: u64,
}

fn four_levels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LevelSettings>, D::Error> {
    let levels = Vec::<LevelSettings>::deserialize(d)?;
    if levels.len() != 4 {
        return Err(serde::de::Error::custom(
            "must list the runbook's four levels, L1 to L4",
        ));
    }
    Ok(levels)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinBy {
    Alarm,
    Resource,
}

/// One level. A list replaces the default list as a whole, so a level's
/// optional keys are absent rather than defaulted: left out, they are off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSettings {
    pub name: String,
    /// Who is mentioned when an incident reaches this level: Slack user ids
    /// (`U…`) or user-group ids (`S…`).
    #[serde(default)]
    pub mention: Vec<String>,
    /// How long an unresolved incident stays at this level before it moves
    /// up; none at the last level.
    #[serde(default, deserialize_with = "values::optional_at_least_one")]
    pub escalate_after_seconds: Option<u64>,
    /// While an incident sits at this level unacknowledged, the level's
    /// people are reminded this often (none: no reminders).
    #[serde(default, deserialize_with = "values::optional_at_least_one")]
    pub remind_every_seconds: Option<u64>,
    /// SNS topics (ARNs) paged when an incident reaches this level: SMS,
    /// e-mail or anything else subscribed to them.
    #[serde(default, deserialize_with = "super::paging::sns_topics")]
    pub sns_topics: Vec<String>,
    /// Whether reaching this level triggers a PagerDuty incident.
    #[serde(default)]
    pub pagerduty: bool,
}
