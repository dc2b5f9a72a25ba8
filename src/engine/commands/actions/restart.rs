//! `/scale restart <function>…`.
//!
//! Replaces the runbook's *RDS Connection Pool Exhaustion*, step 3. The
//! runbook "restarts" a function with `update-function-code --zip-file
//! fileb://dummy.zip`, which replaces the function's code with the dummy
//! archive. The bot instead updates a configuration environment variable
//! (`SCALEBOT_RESTARTED_AT`), which makes Lambda start fresh execution
//! environments (dropping their database connections) and leaves the code
//! as it is.

use crate::catalog::Invocation;
use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};

use super::ActionContext;

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let functions = inv.functions("functions");
    if functions.is_empty() {
        return Err(ActionError::Spec("a `functions` argument".into()));
    }
    // Every function must exist before anything is planned.
    for f in &functions {
        cx.cloud.reserved_concurrency(f).await?;
    }
    let names: Vec<String> = functions.iter().map(|f| format!("`{f}`")).collect();
    let notes = vec![
        format!("Functions affected: {}.", names.join(", ")),
        "Each starts new execution environments: one cold start per environment, and open database \
         connections are closed. The code is not touched (the runbook's dummy.zip upload would replace it)."
            .into(),
    ];
    Ok(Outcome::Proposal(Proposal::new(
        functions
            .iter()
            .map(|f| Change::Restart {
                function: f.to_string(),
            })
            .collect(),
        notes,
    )))
}
