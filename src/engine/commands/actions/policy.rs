//! `/scale policy <function> target <value>`.
//!
//! Replaces the runbook's *Cost Runaway*, step 2 (`put-scaling-policy …
//! --resource-id function:persona-api … TargetValue=90.0`), which has two
//! defects the bot does not copy: provisioned concurrency scales on an alias
//! or version (`function:<name>:<alias>`), not on the bare function, and the
//! utilization metric's target is a fraction (0.1–0.9), not a percentage.
//! The policy is a target-tracking policy on
//! `LambdaProvisionedConcurrencyUtilization`; when the alias has no scalable
//! target yet, the plan registers one within the function's guardrails.

use crate::catalog::Invocation;
use crate::cloud::{ScalableTarget, ScalingPolicy};
use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};

use super::ActionContext;

pub(crate) const DIMENSION: &str = "lambda:function:ProvisionedConcurrency";
pub(crate) const METRIC: &str = "LambdaProvisionedConcurrencyUtilization";

pub(crate) fn policy_name(cx: &ActionContext<'_>) -> String {
    format!("{}-lambda-scaling-policy", cx.settings.runbook.environment)
}

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let function = inv
        .function("function")
        .ok_or_else(|| ActionError::Spec("a `function` argument".into()))?;
    let value = inv
        .number("value")
        .ok_or_else(|| ActionError::Spec("a `value` argument".into()))?;
    let alias = &cx.settings.runbook.default_alias;
    let resource_id = format!("function:{function}:{alias}");
    // The function must exist before a policy is planned for it.
    cx.cloud.reserved_concurrency(function).await?;
    let guard = cx.settings.function(function.as_str());
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    let target = cx
        .cloud
        .scalable_targets("lambda")
        .await?
        .into_iter()
        .find(|t| t.resource_id == resource_id && t.dimension == DIMENSION);
    if target.is_none() {
        let min = guard.min_provisioned.max(1);
        changes.push(Change::Target {
            from: None,
            to: Box::new(ScalableTarget {
                namespace: "lambda".into(),
                resource_id: resource_id.clone(),
                dimension: DIMENSION.into(),
                min,
                max: guard.max_provisioned.max(min),
            }),
        });
        notes.push(format!(
            "`{resource_id}` has no scalable target yet; the plan registers one with the guardrails \
             (min {} / max {}).",
            min,
            guard.max_provisioned.max(min)
        ));
    }
    let name = policy_name(cx);
    let existing = cx
        .cloud
        .scaling_policies("lambda")
        .await?
        .into_iter()
        .find(|p| p.name == name && p.resource_id == resource_id);
    if existing.as_ref().and_then(|p| p.target_value) == Some(value) {
        return Err(ActionError::Refused(format!(
            "policy `{name}` on `{resource_id}` already targets {value}; nothing to change"
        )));
    }
    let to = ScalingPolicy {
        name,
        namespace: "lambda".into(),
        resource_id,
        dimension: DIMENSION.into(),
        policy_type: "TargetTrackingScaling".into(),
        target_value: Some(value),
        predefined_metric: Some(METRIC.into()),
        scale_in_cooldown: existing.as_ref().and_then(|p| p.scale_in_cooldown),
        scale_out_cooldown: existing.as_ref().and_then(|p| p.scale_out_cooldown),
        disable_scale_in: existing.as_ref().and_then(|p| p.disable_scale_in),
        alarms: Vec::new(),
    };
    notes.push(format!(
        "Target tracking on {METRIC}: provisioned concurrency is scaled so that about {:.0} % of it is in use. \
         A higher target means fewer provisioned environments and a lower bill.",
        value * 100.0
    ));
    changes.push(Change::Policy {
        from: existing.map(Box::new),
        to: Box::new(to),
    });
    Ok(Outcome::Proposal(Proposal::new(changes, notes)))
}
