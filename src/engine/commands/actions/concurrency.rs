//! `/scale concurrency <function> <n|clear|auto>`.
//!
//! Replaces the runbook's *Lambda Throttling Emergency*, step 2
//! (`aws lambda put-function-concurrency`), and `clear` its inverse
//! (`delete-function-concurrency`). The plan shows the current value, the
//! account's unreserved concurrency before and after, and refuses what the
//! function's guardrails or AWS's 100-unreserved floor would not allow.
//!
//! `auto` proposes a value from the figures instead of the runbook's fixed
//! 100 ([`raise`]): the throttles reply and the alarm's button use it.

use crate::catalog::{ArgValue, Invocation};
use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};

use super::ActionContext;
use super::raise::{self, UNRESERVED_FLOOR};

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let function = inv
        .function("function")
        .ok_or_else(|| ActionError::Spec("a `function` argument".into()))?;
    if matches!(inv.args.get("value"), Some(ArgValue::Word(w)) if w == "auto") {
        return raise::run(cx, function).await;
    }
    let to = super::count_or_clear(inv, "value")?;
    let guard = cx.settings.function(function.as_str());
    if let Some(n) = to
        && (n < guard.min_reserved || n > guard.max_reserved)
    {
        return Err(ActionError::Refused(format!(
            "{n} is outside the guardrail for `{function}`: reserved concurrency {}–{} \
             (functions.{function}.min_reserved / max_reserved)",
            guard.min_reserved, guard.max_reserved
        )));
    }
    let from = cx.cloud.reserved_concurrency(function).await?;
    if from == to {
        return Err(ActionError::Refused(format!(
            "`{function}` already has reserved concurrency {}; nothing to change",
            to.map(|n| n.to_string())
                .unwrap_or_else(|| "unreserved".into())
        )));
    }
    // The account figure is context, not a precondition: AWS enforces the
    // floor itself, so a role without GetAccountSettings still gets a plan.
    let notes = match cx.cloud.account_concurrency().await {
        Ok(account) => {
            let after = account.unreserved + from.unwrap_or(0) - to.unwrap_or(0);
            if after < UNRESERVED_FLOOR {
                return Err(ActionError::Refused(format!(
                    "AWS keeps at least {UNRESERVED_FLOOR} of the account's concurrency unreserved; \
                     this change would leave {after} of {}",
                    account.limit
                )));
            }
            vec![format!(
                "Account concurrency {}: unreserved {} now → {after} after this change.",
                account.limit, account.unreserved
            )]
        }
        Err(e) => vec![format!("Account concurrency unknown ({e}).")],
    };
    Ok(Outcome::Proposal(Proposal::new(
        vec![Change::Reserved {
            function: function.to_string(),
            from,
            to,
        }],
        notes,
    )))
}
