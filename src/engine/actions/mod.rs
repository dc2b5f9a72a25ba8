//! The runbook's actions, one file each. A read-only action returns a
//! reply; a changing one returns a proposal that runs only once confirmed.

mod activities;
mod batch;
mod concurrency;
mod cost;
mod drill;
mod incidents;
mod policies;
mod policy;
mod provisioned;
mod rds_connections;
mod rds_proxy;
mod report;
mod restart;
mod rollback;
mod throttles;
mod undo;

use super::{ActionError, CommandRequest, Engine, Outcome};
use crate::catalog::Invocation;

/// The actions that command files may name in `action`.
pub const ACTIONS: &[&str] = &[
    "throttles",
    "concurrency",
    "provisioned",
    "policy",
    "restart",
    "rds_connections",
    "rds_proxy",
    "cost",
    "cost_runaway",
    "scale_down",
    "rollback",
    "policies",
    "activities",
    "undo",
    "incidents",
    "incident",
    "report",
    "drill",
];

/// A `<n|clear>` argument: `None` for `clear`.
fn count_or_clear(inv: &Invocation, name: &str) -> Result<Option<i32>, ActionError> {
    use crate::catalog::ArgValue;
    match inv.args.get(name) {
        Some(ArgValue::Word(w)) if w == "clear" => Ok(None),
        Some(ArgValue::Integer(n)) => i32::try_from(*n)
            .map(Some)
            .map_err(|_| ActionError::Refused(format!("{n} is not a concurrency AWS accepts"))),
        _ => Err(ActionError::Spec(format!(
            "a `{name}` argument (a number or `clear`)"
        ))),
    }
}

pub(super) async fn run(
    engine: &Engine,
    inv: &Invocation,
    req: &CommandRequest,
) -> Result<Outcome, ActionError> {
    match inv.spec.action.as_str() {
        "throttles" => throttles::run(engine, inv).await,
        "concurrency" => concurrency::run(engine, inv).await,
        "provisioned" => provisioned::run(engine, inv).await,
        "restart" => restart::run(engine, inv).await,
        "policy" => policy::run(engine, inv).await,
        "rds_connections" => rds_connections::run(engine, inv).await,
        "rds_proxy" => rds_proxy::run(engine, inv).await,
        "cost" => cost::run(engine, inv).await,
        "cost_runaway" => batch::cost_runaway(engine, inv).await,
        "scale_down" => batch::scale_down(engine, inv).await,
        "rollback" => rollback::run(engine, inv).await,
        "policies" => policies::run(engine, inv).await,
        "activities" => activities::run(engine, inv).await,
        "undo" => undo::run(engine, inv, req).await,
        "incidents" => incidents::list(engine).await,
        "incident" => incidents::run(engine, inv, req).await,
        "report" => report::run(engine, inv, req).await,
        "drill" => drill::run(engine, inv).await,
        other => Err(ActionError::Spec(format!("no action `{other}`"))),
    }
}
