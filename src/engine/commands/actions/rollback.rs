//! `/scale rollback <date> [env]`.
//!
//! Replaces the runbook's *Auto-Scaling Policy Rollback*, which reads
//! `backup/lambda-policy-${DATE}.json` files that someone must have saved by
//! hand. The bot restores from its own snapshots: the daily one (taken with
//! the daily health check, kept `reports.snapshot_retention_days`) when
//! there is one, else the last one taken before a change that day. Every policy and target
//! that differs from the snapshot becomes a change in one plan; with `env`,
//! only policies whose name starts with `{env}-`, and their targets.

use crate::catalog::Invocation;
use crate::cloud::{ScalableTarget, ScalingPolicy};
use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};
use crate::reports::snapshot::{NAMESPACES, Snapshot};

use super::ActionContext;

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let date = inv
        .date("date")
        .ok_or_else(|| ActionError::Spec("a `date` argument".into()))?;
    let env = inv.word("env").map(str::to_owned);
    let day = date.format("%Y-%m-%d").to_string();
    let Some(row) = cx.store.snapshot_of_day(&day).await? else {
        let days = cx.store.snapshot_days(7).await?;
        return Err(ActionError::Refused(if days.is_empty() {
            format!("there is no snapshot of {day}; the bot has taken none yet")
        } else {
            format!(
                "there is no snapshot of {day}; snapshots exist for {}",
                days.join(", ")
            )
        }));
    };
    let snap: Snapshot = serde_json::from_str(&row.body)
        .map_err(|e| ActionError::Spec(format!("snapshot {} cannot be read: {e}", row.id)))?;
    let mut changes = Vec::new();
    // A namespace the snapshot could not read is left as it is.
    for ns in NAMESPACES.iter().filter(|ns| {
        !snap
            .missing
            .iter()
            .any(|m| m.starts_with(&format!("{ns}:")))
    }) {
        let current = cx.cloud.scalable_targets(ns).await?;
        changes.extend(target_changes(&snap, ns, env.as_deref(), &current));
        let current = cx.cloud.scaling_policies(ns).await?;
        changes.extend(policy_changes(&snap, ns, env.as_deref(), &current));
    }
    if changes.is_empty() {
        return Err(ActionError::Refused(format!(
            "the scaling policies and targets already match the snapshot of {day}; nothing to restore"
        )));
    }
    let taken = chrono::DateTime::from_timestamp_millis(row.taken_ms).unwrap_or_default();
    let notes = vec![format!(
        "Restores snapshot {} taken {} ({}).",
        row.id,
        crate::format::stamp(taken, cx.tz),
        row.reason
    )];
    Ok(Outcome::Proposal(Proposal::new(changes, notes)))
}

/// The targets of `ns` whose min/max differ from the snapshot. With an
/// environment, only the targets that environment's policies scale.
fn target_changes(
    snap: &Snapshot,
    ns: &str,
    env: Option<&str>,
    current: &[ScalableTarget],
) -> Vec<Change> {
    let in_env = |resource: &str| {
        env.is_none_or(|e| {
            snap.policies
                .iter()
                .any(|p| p.resource_id == resource && p.name.starts_with(&format!("{e}-")))
        })
    };
    snap.targets
        .iter()
        .filter(|t| t.namespace == ns && in_env(&t.resource_id))
        .filter_map(|t| {
            let now = current
                .iter()
                .find(|c| c.resource_id == t.resource_id && c.dimension == t.dimension);
            now.is_none_or(|c| (c.min, c.max) != (t.min, t.max))
                .then(|| Change::Target {
                    from: now.cloned().map(Box::new),
                    to: Box::new(t.clone()),
                })
        })
        .collect()
}

/// The target-tracking policies of `ns` that differ from the snapshot.
fn policy_changes(
    snap: &Snapshot,
    ns: &str,
    env: Option<&str>,
    current: &[ScalingPolicy],
) -> Vec<Change> {
    let key = |p: &ScalingPolicy| {
        (
            p.target_value,
            p.predefined_metric.clone(),
            p.scale_in_cooldown,
            p.scale_out_cooldown,
        )
    };
    snap.policies
        .iter()
        .filter(|p| p.namespace == ns && env.is_none_or(|e| p.name.starts_with(&format!("{e}-"))))
        .filter(|p| p.policy_type == "TargetTrackingScaling")
        .filter_map(|p| {
            let now = current
                .iter()
                .find(|c| c.name == p.name && c.resource_id == p.resource_id);
            let same = now.is_some_and(|c| key(c) == key(p));
            (!same).then(|| Change::Policy {
                from: now.cloned().map(Box::new),
                to: Box::new(p.clone()),
            })
        })
        .collect()
}
