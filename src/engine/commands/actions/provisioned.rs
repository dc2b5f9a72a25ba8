//! `/scale provisioned <function> <alias> <n|clear>`.
//!
//! Provisioned concurrency on an alias or version, from the runbook's cost
//! runaway and scale-down procedures. `$LATEST` is refused by the argument
//! parser: AWS does not allow it, although the runbook's scale-down uses it.
//! The plan estimates the cost per hour before and after from the
//! configured price and the function's memory size.

use crate::catalog::Invocation;

use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};

use super::ActionContext;

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let function = inv
        .function("function")
        .ok_or_else(|| ActionError::Spec("a `function` argument".into()))?;
    let qualifier = inv
        .word("alias")
        .ok_or_else(|| ActionError::Spec("an `alias` argument".into()))?;
    let to = super::count_or_clear(inv, "value")?;
    let guard = cx.settings.function(function.as_str());
    if let Some(n) = to
        && (n < guard.min_provisioned.max(1) || n > guard.max_provisioned)
    {
        return Err(ActionError::Refused(format!(
            "{n} is outside the guardrail for `{function}`: provisioned concurrency {}–{} \
             (functions.{function}.min_provisioned / max_provisioned; use `clear` to remove it)",
            guard.min_provisioned.max(1),
            guard.max_provisioned
        )));
    }
    let from = cx
        .cloud
        .provisioned_configs(function)
        .await?
        .into_iter()
        .find(|c| c.qualifier == qualifier)
        .map(|c| c.requested);
    if from == to {
        return Err(ActionError::Refused(format!(
            "`{function}:{qualifier}` already has provisioned concurrency {}; nothing to change",
            to.map(|n| n.to_string()).unwrap_or_else(|| "none".into())
        )));
    }
    let per_hour = |n: Option<i32>| {
        f64::from(n.unwrap_or(0)) * f64::from(guard.memory_mb) / 1024.0
            * 3600.0
            * cx.settings.prices.provisioned_gb_second
    };
    let notes = vec![format!(
        "Estimated provisioned-concurrency cost: ${}/hour now → ${}/hour after ({} MB per environment, \
         ${} per GB-second).",
        money(per_hour(from)),
        money(per_hour(to)),
        guard.memory_mb,
        cx.settings.prices.provisioned_gb_second
    )];

    Ok(Outcome::Proposal(Proposal::new(
        vec![Change::Provisioned {
            function: function.to_string(),
            qualifier: qualifier.to_owned(),
            from,
            to,
        }],
        notes,
    )))
}

pub(crate) fn money(v: f64) -> String {
    format!("{v:.2}")
}
