//! `/scale undo <plan>`: reverts what an executed plan changed, to the
//! values recorded before it ran, through the same confirmation. Changes
//! that failed are not reverted; restarts and new proxies have no inverse.

use super::change::Change;
use super::{PlanService, changes_of, results_of};
use crate::catalog::Invocation;
use crate::engine::request::{ActionError, CommandRequest, Outcome, Proposal};

impl PlanService {
    /// `/scale undo <plan>`: a proposal that reverts the changes of `plan`
    /// that succeeded.
    pub(crate) async fn undo(
        &self,
        inv: &Invocation,
        _req: &CommandRequest,
    ) -> Result<Outcome, ActionError> {
        undo(self, inv).await
    }
}

async fn undo(plans: &PlanService, inv: &Invocation) -> Result<Outcome, ActionError> {
    let id = inv
        .word("plan")
        .ok_or_else(|| ActionError::Spec("a `plan` argument".into()))?;
    let Some(plan) = plans.store.plan(id).await? else {
        return Err(ActionError::Refused(format!("there is no plan `{id}`")));
    };
    if !plan.state.executed() {
        return Err(ActionError::Refused(format!(
            "plan `{id}` was not executed (it is {}); there is nothing to undo",
            plan.state
        )));
    }
    let changes = changes_of(&plan);
    let results = results_of(&plan);
    let inverses: Vec<Change> = changes
        .iter()
        .enumerate()
        .filter(|(i, _)| results.get(*i).copied().unwrap_or(false))
        .filter_map(|(_, c)| c.inverse())
        .rev()
        .collect();
    if inverses.is_empty() {
        return Err(ActionError::Refused(format!(
            "nothing in plan `{id}` can be undone (restarts and new proxies have no inverse)"
        )));
    }
    let mut proposal = Proposal::new(
        inverses,
        vec![format!(
            "Reverts plan `{id}` (`/scale {}`) to the values recorded before it ran.",
            plan.command
        )],
    );
    proposal.undo_of = Some(plan.id.clone());
    proposal.incident = plan.incident_id.clone();
    Ok(Outcome::Proposal(proposal))
}
