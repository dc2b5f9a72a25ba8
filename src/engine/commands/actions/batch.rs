//! The runbook's batch procedures, each one plan over many resources that
//! two people confirm by default.
//!
//! *Cost runaway* steps 2–3 and *Emergency scale-down*. Each function's
//! current values are read, every change is listed in the plan, a function
//! that does not exist is named and skipped rather than failing the batch,
//! and the execution reports each change's outcome (nothing is skipped
//! silently; the undo covers what did change).

use crate::catalog::Invocation;
use crate::cloud::{CloudError, ScalableTarget};
use crate::domain::FunctionName;
use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};

use super::ActionContext;

use super::policy::DIMENSION;

/// The configured functions that exist, and a note naming the others.
async fn existing_functions(
    cx: &ActionContext<'_>,
) -> Result<(Vec<(FunctionName, Option<i32>)>, Vec<String>), ActionError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for f in &cx.settings.runbook.functions {
        match cx.cloud.reserved_concurrency(f).await {
            Ok(r) => found.push((f.clone(), r)),
            Err(CloudError::NotFound { .. }) => missing.push(format!("`{f}`")),
            Err(e) => return Err(e.into()),
        }
    }
    let notes = if missing.is_empty() {
        Vec::new()
    } else {
        vec![format!("Not found, skipped: {}.", missing.join(", "))]
    };
    Ok((found, notes))
}

/// `/scale cost-runaway`: raise the provisioned-concurrency utilization
/// target (fewer provisioned environments), then cap every configured
/// function's reserved concurrency (the runbook's `for func in …` loop).
pub(super) async fn cost_runaway(
    cx: &ActionContext<'_>,
    _inv: &Invocation,
) -> Result<Outcome, ActionError> {
    let target = cx.settings.runbook.cost_runaway_target;
    let cap = cx.settings.runbook.cost_runaway_reserved;
    let (functions, mut notes) = existing_functions(cx).await?;
    let mut changes = Vec::new();
    let policies = cx.cloud.scaling_policies("lambda").await?;
    for p in policies.iter().filter(|p| {
        p.dimension == DIMENSION
            && functions
                .iter()
                .any(|(f, _)| p.resource_id.starts_with(&format!("function:{f}:")))
    }) {
        if p.target_value.is_some_and(|v| v < target) {
            let mut to = p.clone();
            to.target_value = Some(target);
            changes.push(Change::Policy {
                from: Some(Box::new(p.clone())),
                to: Box::new(to),
            });
        }
    }
    if changes.is_empty() {
        notes.push(format!(
            "No provisioned-concurrency policy targets less than {target}; none to change."
        ));
    }
    for (f, current) in &functions {
        if *current != Some(cap) {
            changes.push(Change::Reserved {
                function: f.to_string(),
                from: *current,
                to: Some(cap),
            });
        }
    }
    if changes.is_empty() {
        return Err(ActionError::Refused(
            "everything is already at the cost-runaway limits; nothing to change".into(),
        ));
    }
    let affected: Vec<String> = functions.iter().map(|(f, _)| format!("`{f}`")).collect();
    notes.push(format!(
        "Functions affected: {}. Each is capped at {cap} concurrent executions: requests above that are throttled.",
        affected.join(", ")
    ));
    Ok(Outcome::Proposal(Proposal::new(changes, notes)))
}

/// `/scale scale-down`: remove provisioned concurrency, set minimal
/// reserved concurrency on every configured function, and bring the cache's
/// replicas to min 0 / max 1. Unlike the runbook it lists the functions'
/// real provisioned configs instead of deleting one on `$LATEST` (which
/// AWS never has) and hiding the error with `|| true`.
pub(super) async fn scale_down(
    cx: &ActionContext<'_>,
    _inv: &Invocation,
) -> Result<Outcome, ActionError> {
    let minimal = cx.settings.runbook.scale_down_reserved;
    let (functions, mut notes) = existing_functions(cx).await?;
    let mut changes = Vec::new();
    for (f, current) in &functions {
        for pc in cx.cloud.provisioned_configs(f).await? {
            changes.push(Change::Provisioned {
                function: f.to_string(),
                qualifier: pc.qualifier.clone(),
                from: Some(pc.requested),
                to: None,
            });
        }
        if *current != Some(minimal) {
            changes.push(Change::Reserved {
                function: f.to_string(),
                from: *current,
                to: Some(minimal),
            });
        }
    }
    let group = &cx.settings.runbook.cache_group;
    let resource_id = format!("replication-group/{group}");
    let dimension = "elasticache:replication-group:Replicas";
    let current = cx
        .cloud
        .scalable_targets("elasticache")
        .await?
        .into_iter()
        .find(|t| t.resource_id == resource_id && t.dimension == dimension);
    if current.as_ref().is_none_or(|t| (t.min, t.max) != (0, 1)) {
        changes.push(Change::Target {
            from: current.map(Box::new),
            to: Box::new(ScalableTarget {
                namespace: "elasticache".into(),
                resource_id,
                dimension: dimension.into(),
                min: 0,
                max: 1,
            }),
        });
    }
    if changes.is_empty() {
        return Err(ActionError::Refused(
            "everything is already scaled down; nothing to change".into(),
        ));
    }
    let affected: Vec<String> = functions.iter().map(|(f, _)| format!("`{f}`")).collect();
    notes.push(format!(
        "Functions affected: {}: no provisioned concurrency, {minimal} concurrent executions each. \
         Expect throttling and cold starts; scale back up with `/scale undo` once the emergency is over.",
        affected.join(", ")
    ));
    Ok(Outcome::Proposal(Proposal::new(changes, notes)))
}
