//! Plans that always finish: an executing plan is held under a lease that
//! its replica renews. When a replica dies mid-plan, the lease runs out and
//! another replica takes the plan over: it reads AWS again, records what
//! actually changed (each change applied or not), posts that in the
//! incident thread and leaves the plan undoable like any other.

use std::sync::Arc;
use std::time::Duration;

use super::change::Change;
use super::{ChangeResult, PlanService, View, doc_of, outcome_tone};
use crate::chat::Message;
use crate::domain::state::PlanState;
use crate::engine::request::ActionError;
use crate::store::PlanRow;

/// How long an executing plan holds without renewal (wall clock): four
/// renewals, so a slow replica keeps it; with the sweep every second a
/// dead replica's plan is taken over within 9 s of its last renewal.
pub(super) const LEASE_MS: i64 = 8_000;
pub(super) const RENEW_EVERY: Duration = Duration::from_secs(2);
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl PlanService {
    /// Takes over executing plans whose replica stopped renewing them.
    pub fn spawn_reaper(self: &Arc<Self>) {
        let me = self.clone();
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(SWEEP_EVERY) => {}
                }
                if let Err(e) = me.reap().await {
                    tracing::warn!(error = %e, "orphaned-plan sweep failed");
                }
            }
        });
    }

    async fn reap(&self) -> Result<(), ActionError> {
        let now = crate::store::now_ms();
        let orphans = self
            .store
            .take_over_orphaned_plans(&self.holder, now, now + LEASE_MS)
            .await?;
        for plan in orphans {
            if let Err(e) = self.holding(&plan.id, self.reconcile(&plan)).await {
                // Still executing under this replica's lease: the next
                // sweep after it runs out tries again.
                tracing::warn!(plan = %plan.id, error = %e, "orphaned plan not reconciled yet");
            }
        }
        let unsaid = self
            .store
            .take_unsaid_plans(&self.holder, now, now + LEASE_MS)
            .await?;
        for plan in unsaid {
            if let Err(e) = self.say_again(&plan).await {
                tracing::warn!(plan = %plan.id, error = %e, "plan result not said yet");
            }
        }
        Ok(())
    }

    /// What AWS holds now, change by change, recorded as the plan's outcome.
    async fn reconcile(&self, plan: &PlanRow) -> Result<(), ActionError> {
        let doc = doc_of(plan);
        let mut results = Vec::with_capacity(doc.changes.len());
        for change in &doc.changes {
            let now = change.refresh(self.cloud.as_ref()).await?;
            results.push(found(plan, change, &now));
        }
        let oks = results.iter().filter(|r| r.ok).count();
        let state = match oks {
            n if n == results.len() && n > 0 => PlanState::Done,
            0 => PlanState::Failed,
            _ => PlanState::Partial,
        };
        let outcome = serde_json::to_string(&results).unwrap_or_else(|_| "[]".into());
        let undo = if oks > 0 && !plan.dry_run {
            format!("\nTo revert: `/scale undo {}`", plan.id)
        } else {
            String::new()
        };
        let lines: Vec<String> = results
            .iter()
            .map(|r| format!("{} {}", if r.ok { "✅" } else { "❌" }, r.note))
            .collect();
        let message = Message {
            tone: outcome_tone(state),
            text: format!(
                "⚠️ The replica executing plan `{}` stopped before it finished. AWS now shows:\n{}\nRecorded as {}.{undo}",
                plan.id,
                lines.join("\n"),
                state.as_str()
            )
            .into(),
            ..Default::default()
        };
        // Said before it is recorded: a failed post leaves the plan
        // orphaned, so a later sweep reads AWS and says it again (at least
        // once), rather than recording a truth nobody was told.
        if let Some(incident) = self.incident_of(plan).await {
            self.incidents
                .thread(&incident, "scalebot", "executed", &message)
                .await?;
        } else {
            self.chat.post(&plan.channel, None, &message).await?;
        }
        self.store
            .finish_plan(&plan.id, state, &outcome, self.now().timestamp_millis())
            .await?;
        tracing::warn!(plan = %plan.id, state = state.as_str(), "orphaned plan reconciled from AWS");
        self.redraw(plan, View::Executed(state)).await;
        Ok(())
    }
}

/// One change as found after a crash: applied when AWS holds its target.
fn found(plan: &PlanRow, planned: &Change, now: &Change) -> ChangeResult {
    let (what, from, to) = planned.describe();
    let (_, is, _) = now.describe();
    if plan.dry_run {
        return ChangeResult {
            ok: true,
            note: format!("DRY RUN: would change {what} from {from} to {to}"),
        };
    }
    if planned.reached_by(now) {
        ChangeResult {
            ok: true,
            note: format!("{what}: {from} → {to} (found applied)"),
        }
    } else {
        ChangeResult {
            ok: false,
            note: format!("{what}: is {is}, not {to} (not applied before the replica stopped)"),
        }
    }
}
