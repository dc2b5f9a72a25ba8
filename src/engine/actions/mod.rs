//! The runbook's actions, one file each. A read-only action returns a
//! reply; a changing one returns a proposal that runs only once confirmed.

mod concurrency;
mod provisioned;
mod restart;
mod throttles;
mod undo;

use super::{ActionError, CommandRequest, Engine, Outcome};
use crate::catalog::Invocation;

/// The actions that command files may name in `action`.
pub const ACTIONS: &[&str] = &["throttles", "concurrency", "provisioned", "restart", "undo"];

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
        "undo" => undo::run(engine, inv, req).await,
        other => Err(ActionError::Spec(format!("no action `{other}`"))),
    }
}
