//! Running a claimed plan: drift check → snapshot → apply → summary, then
//! the watch on what should move. Each step is a reply in the incident's
//! thread.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::change::Change;
use super::{ChangeResult, PlanDoc, PlanService, View, doc_of, outcome_tone};
use crate::catalog::Parsed;
use crate::chat::{Message, Text, Tone};
use crate::domain::state::PlanState;
use crate::engine::request::{ActionError, CommandRequest, Proposal};
use crate::store::{IncidentRow, PlanRow};

/// The plan being run and the incident whose thread it reports into.
struct Run<'a> {
    plan: &'a PlanRow,
    incident: Option<IncidentRow>,
}

impl PlanService {
    /// Runs a claimed plan. Only the caller whose claim changed the row
    /// gets here, so each plan runs at most once.
    pub(super) async fn execute(
        self: &Arc<Self>,
        plan: PlanRow,
        approvers: Vec<String>,
    ) -> Result<(), ActionError> {
        let alive = self.keep_lease(&plan.id);
        let _stop_renewing = alive.drop_guard();
        let doc = doc_of(&plan);
        let run = Run {
            incident: self.incident_of(&plan).await,
            plan: &plan,
        };
        self.post(&run, "confirmed", confirmed(&plan, &approvers))
            .await?;
        let Some(refreshed) = self.check_drift(&run, &doc).await? else {
            return Ok(());
        };
        if !plan.dry_run {
            self.snapshot_before(&run).await?;
        }
        let changed_at = self.now();
        let results = self.apply(&plan, &refreshed).await;
        // The watch is stored before the result is said, so a crash
        // between the two does not leave a change without its watch.
        self.watch(&run, &refreshed, &results, changed_at).await;
        self.summarise(&run, &refreshed, &results).await?;
        Ok(())
    }

    /// A step in the incident's thread. A failed post does not stop the
    /// plan: what matters is in the store, and the summary says it again.
    async fn post(&self, run: &Run<'_>, kind: &str, message: Message) -> Result<(), ActionError> {
        if let Some(i) = &run.incident
            && let Err(e) = self.incidents.thread(i, "scalebot", kind, &message).await
        {
            tracing::warn!(plan = %run.plan.id, step = kind, error = %e, "plan step not posted");
        }
        Ok(())
    }

    /// Renews the plan's lease while it runs; cancel the token when done.
    fn keep_lease(&self, plan: &str) -> tokio_util::sync::CancellationToken {
        let stop = tokio_util::sync::CancellationToken::new();
        let (store, holder, plan) = (self.store.clone(), self.holder.clone(), plan.to_owned());
        let done = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = done.cancelled() => return,
                    _ = tokio::time::sleep(super::reap::RENEW_EVERY) => {}
                }
                let until = crate::store::now_ms() + super::reap::LEASE_MS;
                if let Err(e) = store.renew_plan_lease(&plan, &holder, until).await {
                    tracing::warn!(%plan, error = %e, "plan lease not renewed");
                }
            }
        });
        stop
    }

    /// What AWS holds now must still be what the plan showed. `None` when
    /// it is not: nothing runs, and a fresh plan is proposed instead.
    async fn check_drift(
        self: &Arc<Self>,
        run: &Run<'_>,
        doc: &PlanDoc,
    ) -> Result<Option<Vec<Change>>, ActionError> {
        let plan = run.plan;
        let mut refreshed = Vec::with_capacity(doc.changes.len());
        for change in &doc.changes {
            match change.refresh(self.cloud.as_ref()).await {
                Ok(c) => refreshed.push(c),
                Err(e) => {
                    let now = self.now().timestamp_millis();
                    self.store
                        .finish_plan(&plan.id, PlanState::Failed, "[]", now)
                        .await?;
                    self.redraw(plan, View::Executed(PlanState::Failed)).await;
                    let text = format!(
                        "❌ Could not read AWS before executing plan `{}`: {e}. Nothing was changed.",
                        plan.id
                    );
                    self.post(run, "failed", toned(Tone::Bad, text)).await?;
                    return Ok(None);
                }
            }
        }
        let drifted: Vec<String> = doc
            .changes
            .iter()
            .zip(&refreshed)
            .filter(|(a, b)| !a.same_start(b))
            .map(|(a, b)| {
                let (what, was, _) = a.describe();
                let (_, is, _) = b.describe();
                format!("{what} was {was} when planned and is {is} now")
            })
            .collect();
        if drifted.is_empty() {
            return Ok(Some(refreshed));
        }
        self.supersede(run, doc, refreshed, &drifted).await?;
        Ok(None)
    }

    /// Closes a drifted plan and proposes the same command again with the
    /// values AWS holds now.
    async fn supersede(
        self: &Arc<Self>,
        run: &Run<'_>,
        doc: &PlanDoc,
        refreshed: Vec<Change>,
        drifted: &[String],
    ) -> Result<(), ActionError> {
        let plan = run.plan;
        let now = self.now().timestamp_millis();
        self.store
            .finish_plan(&plan.id, PlanState::Superseded, "[]", now)
            .await?;
        let closed = "🔁 Superseded: AWS changed after this plan was shown; nothing was changed.";
        self.redraw(plan, View::Closed(closed.into())).await;
        // A change AWS already holds (someone made it meanwhile) is not
        // proposed again as "100 → 100".
        let refreshed: Vec<Change> = refreshed.into_iter().filter(|c| !c.reached_by(c)).collect();
        let next = if refreshed.is_empty() {
            "AWS already holds what it would set, so no new plan is needed"
        } else {
            "a fresh plan follows"
        };
        let text = format!(
            "🔁 AWS changed since plan `{}` was shown: {}. Nothing was changed; {next}.",
            plan.id,
            drifted.join("; ")
        );
        self.post(run, "drift", toned(Tone::Warning, text)).await?;
        if refreshed.is_empty() {
            return Ok(());
        }
        let req = CommandRequest {
            via: plan.platform.clone(),
            user: plan.requester.clone(),
            channel: plan.channel.clone(),
            text: plan.command.clone(),
            incident: plan.incident_id.clone(),
        };
        let Parsed::Run(inv) = self.catalog.parse(&plan.command) else {
            return Err(ActionError::Spec(format!(
                "`{}` no longer parses",
                plan.command
            )));
        };
        let mut proposal = Proposal::new(refreshed, doc.notes.clone());
        proposal.undo_of = plan.undo_of.clone();
        proposal.incident = plan.incident_id.clone();
        self.propose(&req, &inv, proposal, Some(plan)).await?;
        Ok(())
    }

    /// The rollback command restores from these; a failed snapshot is
    /// reported but does not hold up an emergency change.
    async fn snapshot_before(&self, run: &Run<'_>) -> Result<(), ActionError> {
        let reason = format!("before plan {}", run.plan.id);
        let warning = match self.reports.take_snapshot(&reason).await {
            Ok((_, missing)) if missing.is_empty() => None,
            Ok((id, missing)) => Some(format!(
                "Snapshot {id} of the scaling policies is incomplete ({}).",
                missing.join("; ")
            )),
            Err(e) => Some(format!("Could not snapshot the scaling policies ({e}).")),
        };
        match warning {
            Some(text) => {
                let text = format!("⚠️ {text} Continuing with the change.");
                self.post(run, "snapshot", toned(Tone::Warning, text)).await
            }
            None => Ok(()),
        }
    }

    /// Each change in turn; one failing does not stop the others. The
    /// outcome so far is stored after each, so that a replica that takes
    /// over after a crash knows what was tried.
    async fn apply(&self, plan: &PlanRow, changes: &[Change]) -> Vec<ChangeResult> {
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            let (what, from, to) = change.describe();
            let result = if plan.dry_run {
                Ok(format!("DRY RUN: would change {what} from {from} to {to}"))
            } else {
                change.apply(self.cloud.as_ref()).await
            };
            let (ok, note) = match result {
                Ok(note) => (true, note),
                Err(e) => match self.applied_anyway(change).await {
                    true => (
                        true,
                        format!(
                            "{what}: {from} → {to} (AWS applied it although the call ended in an error: {e})"
                        ),
                    ),
                    false => (false, format!("{what}: {e}")),
                },
            };
            results.push(ChangeResult { ok, note });
            let so_far = serde_json::to_string(&results).unwrap_or_else(|_| "[]".into());
            if let Err(e) = self.store.record_plan_progress(&plan.id, &so_far).await {
                tracing::warn!(plan = %plan.id, error = %e, "plan progress not stored");
            }
        }
        results
    }

    /// A call that timed out (or whose answer was lost) may still have
    /// been applied: AWS is read again before it is counted as failed.
    pub(super) async fn applied_anyway(&self, change: &Change) -> bool {
        match change.refresh(self.cloud.as_ref()).await {
            Ok(now) => change.reached_by(&now),
            Err(_) => false,
        }
    }

    /// Records the outcome, says it (in the thread, and in the channel the
    /// command came from when that is elsewhere), then marks it said. A
    /// failed post leaves it unsaid under this replica's lease; once that
    /// runs out any replica says it (`reap.rs`), so a result is said at
    /// least once.
    async fn summarise(
        &self,
        run: &Run<'_>,
        changes: &[Change],
        results: &[ChangeResult],
    ) -> Result<(), ActionError> {
        let plan = run.plan;
        let oks = results.iter().filter(|r| r.ok).count();
        let state = if oks == results.len() {
            PlanState::Done
        } else if oks == 0 {
            PlanState::Failed
        } else {
            PlanState::Partial
        };
        let outcome = serde_json::to_string(results).unwrap_or_else(|_| "[]".into());
        let lease = crate::store::now_ms() + super::reap::LEASE_MS;
        self.store
            .finish_plan_unsaid(
                &plan.id,
                state,
                &outcome,
                self.now().timestamp_millis(),
                lease,
            )
            .await?;
        self.redraw(plan, View::Executed(state)).await;
        let undoable = oks > 0 && changes.iter().any(|c| c.inverse().is_some());
        let summary = summary(plan, state, results, undoable && !plan.dry_run);
        self.say_result(run, &summary).await?;
        self.store
            .mark_plan_said(&plan.id, self.now().timestamp_millis())
            .await?;
        Ok(())
    }

    /// Says the recorded result of a plan whose replica could not (it died,
    /// or chat failed), then marks it said.
    pub(super) async fn say_again(&self, plan: &PlanRow) -> Result<(), ActionError> {
        let results: Vec<ChangeResult> = plan
            .outcome
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        let oks = results.iter().filter(|r| r.ok).count();
        let undoable = oks > 0 && doc_of(plan).changes.iter().any(|c| c.inverse().is_some());
        let summary = summary(plan, plan.state, &results, undoable && !plan.dry_run);
        let run = Run {
            incident: self.incident_of(plan).await,
            plan,
        };
        self.holding(&plan.id, self.say_result(&run, &summary))
            .await?;
        self.store
            .mark_plan_said(&plan.id, self.now().timestamp_millis())
            .await?;
        Ok(())
    }

    /// Runs `work` on a plan this replica took over, renewing its lease so
    /// that a slow post (Slack's 429s) does not hand it to another replica.
    pub(super) async fn holding<T>(&self, plan: &str, work: impl Future<Output = T>) -> T {
        crate::store::renew::renewing(work, || {
            let until = crate::store::now_ms() + super::reap::LEASE_MS;
            self.store.renew_plan_lease(plan, &self.holder, until)
        })
        .await
    }

    /// The result in the incident's thread, and in the channel the command
    /// came from. Said means the thread has it: the other channel's copy is
    /// a courtesy whose failure (the bot removed from it) must not make the
    /// thread repeat it for ever. Without an incident, that channel is all.
    async fn say_result(&self, run: &Run<'_>, summary: &Message) -> Result<(), ActionError> {
        let plan = run.plan;
        let Some(incident) = &run.incident else {
            self.chat.post(&plan.channel, None, summary).await?;
            return Ok(());
        };
        self.incidents
            .thread(incident, "scalebot", "executed", summary)
            .await?;
        if incident.channel != plan.channel
            && let Err(e) = self.chat.post(&plan.channel, None, summary).await
        {
            tracing::warn!(plan = %plan.id, error = %e, "result not copied to the command's channel");
        }
        Ok(())
    }

    /// The runbook's step 3 after a change that should move a metric
    /// (reserved concurrency: throttles; a provisioned raise: spillover):
    /// watch it until it settles.
    async fn watch(
        &self,
        run: &Run<'_>,
        changes: &[Change],
        results: &[ChangeResult],
        changed_at: DateTime<Utc>,
    ) {
        let (false, Some(incident)) = (run.plan.dry_run, &run.incident) else {
            return;
        };
        for (change, result) in changes.iter().zip(results) {
            let started = match (change, result.ok) {
                (Change::Reserved { function, to, .. }, true) => {
                    self.incidents
                        .start_watch(incident, function, *to, changed_at)
                        .await
                }
                // Only a raise should move spillover; a cut saves money.
                (
                    Change::Provisioned {
                        function,
                        qualifier,
                        from,
                        to: Some(to),
                    },
                    true,
                ) if from.is_none_or(|f| f < *to) => {
                    self.incidents
                        .start_provisioned_watch(incident, function, qualifier, changed_at)
                        .await
                }
                _ => Ok(()),
            };
            if let Err(e) = started {
                // The change is made; only its watch is missing.
                tracing::warn!(change = ?change.describe().0, error = %e, "watch not started");
            }
        }
    }
}

fn confirmed(plan: &PlanRow, approvers: &[String]) -> Message {
    Message::text(
        Text::from(format!("▶️ Plan `{}` confirmed by ", plan.id))
            .users(approvers.iter(), " and ")
            .markup(format!(
                ". Checking AWS again before changing anything…{}",
                if plan.dry_run { " (dry run)" } else { "" }
            )),
    )
}

fn summary(plan: &PlanRow, state: PlanState, results: &[ChangeResult], undo: bool) -> Message {
    let lines: Vec<String> = results
        .iter()
        .map(|r| format!("{} {}", if r.ok { "✅" } else { "❌" }, r.note))
        .collect();
    let undo = if undo {
        format!("\nTo revert: `/scale undo {}`", plan.id)
    } else {
        String::new()
    };
    let done = match state {
        PlanState::Done => "executed",
        PlanState::Partial => "partly executed; nothing was skipped silently",
        _ => "failed",
    };
    toned(
        outcome_tone(state),
        format!("Plan `{}` {done}:\n{}{undo}", plan.id, lines.join("\n")),
    )
}

fn toned(tone: Tone, text: String) -> Message {
    Message {
        tone,
        text: text.into(),
        ..Default::default()
    }
}
