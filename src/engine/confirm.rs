//! Confirmation: a plan is stored, posted with Confirm and Cancel, approved
//! by permitted people, claimed atomically, checked for drift, executed
//! change by change, and expired when nobody confirms it in time.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alarms::IncidentVerb;
use super::incident::short_id;
use super::plan::Change;
use super::{ActionError, CommandRequest, Engine, Platform, Proposal};
use crate::catalog::{Invocation, Parsed};
use crate::chat::{Button, ButtonAction, ButtonStyle, Confirm, Message, MessageRef, Tone, mention};
use crate::domain::state::PlanState;
use crate::store::{AuditEntry, AuditId, IncidentRow, PlanRow};

/// A button click, verified by the ingress.
#[derive(Debug, Clone)]
pub struct ButtonEvent {
    pub platform: Platform,
    pub user: String,
    pub channel: String,
    pub action: ButtonAction,
}

/// What is stored in `plans.changes`: the changes and the notes shown with them.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlanDoc {
    changes: Vec<Change>,
    notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChangeResult {
    ok: bool,
    note: String,
}

/// Which changes of an executed plan succeeded, by index.
pub(crate) fn results_of(plan: &PlanRow) -> Vec<bool> {
    plan.outcome
        .as_deref()
        .and_then(|o| serde_json::from_str::<Vec<ChangeResult>>(o).ok())
        .map(|r| r.iter().map(|c| c.ok).collect())
        .unwrap_or_default()
}

/// The changes a stored plan holds.
pub(crate) fn changes_of(plan: &PlanRow) -> Vec<Change> {
    doc_of(plan).changes
}

fn doc_of(plan: &PlanRow) -> PlanDoc {
    serde_json::from_str(&plan.changes).unwrap_or(PlanDoc {
        changes: Vec::new(),
        notes: Vec::new(),
    })
}

enum View<'a> {
    Pending(&'a [String]),
    Executed(PlanState),
    Closed(String),
}

impl Engine {
    /// Stores a plan, then posts it in the incident's thread with its
    /// buttons, and a pointer in the channel the command came from.
    pub(super) async fn propose(
        &self,
        req: &CommandRequest,
        inv: &Invocation,
        proposal: Proposal,
        supersedes: Option<&PlanRow>,
    ) -> Result<String, ActionError> {
        let confirm = inv.spec.confirm.clone();
        let (role, approvals, destructive) = match (&confirm, supersedes) {
            (Some(c), _) => (c.role.clone(), i64::from(c.approvals), c.destructive),
            (None, Some(p)) => (p.role.clone(), p.approvals_needed, p.destructive),
            (None, None) => ("operators".to_owned(), 1, false),
        };
        let existing = proposal.incident.clone().or_else(|| req.incident.clone());
        let incident = self
            .incident_for(&req.user, &inv.canonical(), existing.as_deref())
            .await?;
        let now = self.now().timestamp_millis();
        let doc = PlanDoc {
            changes: proposal.changes,
            notes: proposal.notes,
        };
        let plan = PlanRow {
            id: short_id("P"),
            command: inv.canonical(),
            requester: req.user.clone(),
            platform: req.platform.as_str().into(),
            channel: req.channel.clone(),
            incident_id: Some(incident.id.clone()),
            changes: serde_json::to_string(&doc).map_err(|e| ActionError::Spec(e.to_string()))?,
            role,
            approvals_needed: approvals.max(1),
            destructive,
            dry_run: self.settings.runbook.dry_run,
            state: PlanState::Pending,
            created_ms: now,
            expires_ms: now + (self.settings.runbook.plan_ttl_seconds as i64) * 1000,
            message_channel: None,
            message_ts: None,
            outcome: None,
            undo_of: proposal.undo_of,
            finished_ms: None,
        };
        self.store.insert_plan(&plan).await?;
        let posted = self
            .thread(
                &incident,
                &req.user,
                "plan",
                &self.plan_message(&plan, View::Pending(&[])),
            )
            .await?;
        self.store
            .set_plan_message(&plan.id, &posted.channel, &posted.id)
            .await?;
        if req.channel != incident.channel {
            let mut pointer = Message::text(format!(
                "📋 Plan `{}` for `/scale {}` is waiting for confirmation in the thread of {} in <#{}>.",
                plan.id, plan.command, incident.id, incident.channel
            ));
            if plan.dry_run {
                pointer.text.push_str(" (dry run)");
            }
            pointer.answers = Some(req.user.clone());
            self.chat.post(&req.channel, None, &pointer).await?;
        }
        if let Some(old) = supersedes {
            tracing::info!(old = %old.id, new = %plan.id, "plan superseded after drift");
        }
        Ok(plan.id)
    }

    fn plan_message(&self, plan: &PlanRow, view: View<'_>) -> Message {
        let doc = doc_of(plan);
        let expires = chrono::DateTime::from_timestamp_millis(plan.expires_ms).unwrap_or_default();
        let who = if plan.approvals_needed >= 2 {
            format!(
                "{} people in role `{}`, not the requester",
                plan.approvals_needed, plan.role
            )
        } else {
            format!("someone in role `{}`", plan.role)
        };
        let (tone, status) = match &view {
            View::Pending(approved) => {
                let mut s = format!(
                    "Requested by {}. Needs confirmation by {who}. Expires at {}.",
                    mention(&plan.requester),
                    crate::format::time_of_day(expires, self.tz)
                );
                if !approved.is_empty() {
                    let names: Vec<String> = approved.iter().map(|a| mention(a)).collect();
                    s.push_str(&format!(
                        "\nApproved so far ({} of {}): {}",
                        approved.len(),
                        plan.approvals_needed,
                        names.join(", ")
                    ));
                }
                (Tone::Warning, s)
            }
            View::Executed(state) => (
                outcome_tone(*state),
                format!(
                    "Requested by {}. {}",
                    mention(&plan.requester),
                    match state {
                        PlanState::Done => "✅ Executed; the results are in this thread.",
                        PlanState::Partial => "⚠️ Partly executed; the results are in this thread.",
                        _ => "❌ Failed; the errors are in this thread.",
                    }
                ),
            ),
            View::Closed(s) => (Tone::Neutral, s.clone()),
        };
        let mut text = status;
        if plan.dry_run {
            text.push_str("\n*DRY RUN*: nothing will be changed in AWS.");
        }
        for note in &doc.notes {
            text.push_str(&format!("\n• {note}"));
        }
        let mut message = Message {
            title: Some(format!("Plan {}: /scale {}", plan.id, plan.command)),
            tone,
            text,
            footer: plan.undo_of.as_ref().map(|u| format!("Undoes plan {u}")),
            ..Default::default()
        };
        for change in &doc.changes {
            let (what, from, to) = change.describe();
            message = message.field(what, format!("{from} → {to}"));
        }
        if matches!(view, View::Pending(_)) {
            let summary: Vec<String> = doc
                .changes
                .iter()
                .map(|c| {
                    let (what, from, to) = c.describe();
                    format!("{what}: {from} → {to}")
                })
                .collect();
            message.buttons = vec![
                Button {
                    label: if plan.destructive {
                        "Confirm (destructive)".into()
                    } else {
                        "Confirm".into()
                    },
                    action: ButtonAction::ConfirmPlan {
                        plan: plan.id.clone(),
                    },
                    style: if plan.destructive {
                        ButtonStyle::Danger
                    } else {
                        ButtonStyle::Primary
                    },
                    confirm: Some(Confirm {
                        title: format!("Run plan {}?", plan.id),
                        text: summary.join("\n"),
                        confirm: "Run it".into(),
                        deny: "Not yet".into(),
                    }),
                },
                Button {
                    label: "Cancel".into(),
                    action: ButtonAction::CancelPlan {
                        plan: plan.id.clone(),
                    },
                    style: ButtonStyle::Default,
                    confirm: None,
                },
            ];
        }
        message
    }

    async fn redraw(&self, plan: &PlanRow, view: View<'_>) {
        // A click can arrive between posting the plan and storing where it
        // was posted; wait briefly for the handle rather than skip the update.
        let mut plan = plan.clone();
        for _ in 0..20 {
            if plan.message_ts.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.store.plan(&plan.id).await {
                Ok(Some(p)) => {
                    plan.message_channel = p.message_channel;
                    plan.message_ts = p.message_ts;
                }
                _ => break,
            }
        }
        let plan = &plan;
        if let (Some(channel), Some(ts)) = (&plan.message_channel, &plan.message_ts) {
            let at = MessageRef {
                channel: channel.clone(),
                id: ts.clone(),
            };
            if let Err(e) = self.chat.update(&at, &self.plan_message(plan, view)).await {
                tracing::warn!(plan = %plan.id, error = %e, "plan message not updated");
            }
        }
    }

    async fn tell(&self, ev: &ButtonEvent, text: String) {
        if let Err(e) = self
            .chat
            .ephemeral(&ev.channel, &ev.user, &Message::text(text))
            .await
        {
            tracing::warn!(error = %e, "ephemeral reply failed");
        }
    }

    /// Whether `user` holds `role`: listed by id, or a member of a listed
    /// Slack user group (`S…`) or Discord role (`&<id>`).
    pub(super) async fn permitted(&self, user: &str, role: &str) -> bool {
        let Some(members) = self.settings.roles.get(role) else {
            return false;
        };
        if members.iter().any(|m| m == user) {
            return true;
        }
        for group in members
            .iter()
            .filter(|m| m.starts_with('S') || m.starts_with('&'))
        {
            match self.chat.group_members(group).await {
                Ok(users) if users.iter().any(|u| u == user) => return true,
                Ok(_) => {}
                Err(e) => tracing::warn!(group, error = %e, "user group lookup failed"),
            }
        }
        false
    }

    async fn incident_of(&self, plan: &PlanRow) -> Option<IncidentRow> {
        match &plan.incident_id {
            Some(id) => self.store.incident(id).await.ok().flatten(),
            None => None,
        }
    }

    async fn audit_click(&self, ev: &ButtonEvent, what: String, outcome: &str, detail: String) {
        let entry = AuditEntry {
            id: AuditId::new().0,
            at_ms: self.now().timestamp_millis(),
            platform: ev.platform.as_str().into(),
            actor: ev.user.clone(),
            channel: ev.channel.clone(),
            command: what,
            outcome: outcome.into(),
            detail,
            finished_ms: Some(self.now().timestamp_millis()),
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }

    /// A button click; runs after the ingress has acknowledged it.
    pub async fn on_button(self: &Arc<Self>, ev: ButtonEvent) {
        let result = match &ev.action {
            ButtonAction::ConfirmPlan { plan } => self.confirm_click(&ev, plan).await,
            ButtonAction::CancelPlan { plan } => self.cancel_click(&ev, plan).await,
            ButtonAction::Run { command, incident } => {
                self.run_button(&ev, command, incident.clone()).await;
                Ok(())
            }
            ButtonAction::Acknowledge { incident } => {
                self.incident_click(&ev, IncidentVerb::Acknowledge, incident)
                    .await
            }
            ButtonAction::Escalate { incident } => {
                self.incident_click(&ev, IncidentVerb::Escalate, incident)
                    .await
            }
            ButtonAction::Resolve { incident } => {
                self.incident_click(&ev, IncidentVerb::Resolve, incident)
                    .await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, action = ev.action.action_id(), "button handling failed");
            self.tell(&ev, format!("⚠️ That did not work: {e}")).await;
        }
    }

    async fn incident_click(
        &self,
        ev: &ButtonEvent,
        verb: IncidentVerb,
        incident: &str,
    ) -> Result<(), ActionError> {
        if let Some(answer) = self.incident_button(&ev.user, verb, incident).await? {
            self.tell(ev, answer).await;
        }
        Ok(())
    }

    /// A button that runs a command (e.g. "Raise reserved concurrency"),
    /// as if the clicker had typed it.
    async fn run_button(self: &Arc<Self>, ev: &ButtonEvent, text: &str, incident: Option<String>) {
        let text = text.to_owned();
        let ack = self
            .accept(CommandRequest {
                platform: ev.platform,
                user: ev.user.clone(),
                channel: ev.channel.clone(),
                text,
                incident,
            })
            .await;
        if let Err(e) = self
            .chat
            .ephemeral(&ev.channel, &ev.user, &ack.message)
            .await
        {
            tracing::warn!(error = %e, "ephemeral reply failed");
        }
    }

    async fn confirm_click(
        self: &Arc<Self>,
        ev: &ButtonEvent,
        plan_id: &str,
    ) -> Result<(), ActionError> {
        let what = format!("confirm {plan_id}");
        let Some(plan) = self.store.plan(plan_id).await? else {
            self.audit_click(ev, what, "rejected", "unknown plan".into())
                .await;
            self.tell(ev, format!("There is no plan `{plan_id}`."))
                .await;
            return Ok(());
        };
        let now = self.now().timestamp_millis();
        if plan.state == PlanState::Pending && now >= plan.expires_ms {
            self.expire(&plan).await?;
        }
        let Some(plan) = self.store.plan(plan_id).await? else {
            return Ok(());
        };
        if plan.state != PlanState::Pending {
            self.audit_click(ev, what, "rejected", format!("plan is {}", plan.state))
                .await;
            self.tell(
                ev,
                format!("Plan `{}` is {}; nothing was done.", plan.id, plan.state),
            )
            .await;
            return Ok(());
        }
        if !self.permitted(&ev.user, &plan.role).await {
            self.audit_click(ev, what, "refused", format!("not in role {}", plan.role))
                .await;
            self.tell(
                ev,
                format!(
                    "🚫 Only people in role `{}` can confirm plan `{}`. Nothing was changed.",
                    plan.role, plan.id
                ),
            )
            .await;
            return Ok(());
        }
        if plan.approvals_needed >= 2 && ev.user == plan.requester {
            self.audit_click(ev, what, "refused", "self-approval".into())
                .await;
            self.tell(
                ev,
                format!(
                    "🚫 You requested plan `{}`; it needs {} other people to confirm it.",
                    plan.id, plan.approvals_needed
                ),
            )
            .await;
            return Ok(());
        }
        let fresh = self.store.add_approval(&plan.id, &ev.user, now).await?;
        let approvals = self.store.approvals(&plan.id).await?;
        self.audit_click(
            ev,
            what,
            "approved",
            format!("{} of {}", approvals.len(), plan.approvals_needed),
        )
        .await;
        if (approvals.len() as i64) < plan.approvals_needed {
            if fresh {
                if let Some(incident) = self.incident_of(&plan).await {
                    self.thread(
                        &incident,
                        &ev.user,
                        "approval",
                        &Message::text(format!(
                            "👍 {} approved plan `{}` ({} of {}).",
                            mention(&ev.user),
                            plan.id,
                            approvals.len(),
                            plan.approvals_needed
                        )),
                    )
                    .await?;
                }
                self.redraw(&plan, View::Pending(&approvals)).await;
            } else {
                self.tell(ev, format!("You have already approved plan `{}`.", plan.id))
                    .await;
            }
            return Ok(());
        }
        // The one conditional update that decides who runs the plan.
        if !self
            .store
            .transition_plan(&plan.id, PlanState::Executing, now)
            .await?
        {
            self.tell(
                ev,
                format!(
                    "Plan `{}` is already being handled; nothing more was done.",
                    plan.id
                ),
            )
            .await;
            return Ok(());
        }
        self.execute(plan, approvals).await
    }

    async fn cancel_click(&self, ev: &ButtonEvent, plan_id: &str) -> Result<(), ActionError> {
        let what = format!("cancel {plan_id}");
        let Some(plan) = self.store.plan(plan_id).await? else {
            self.tell(ev, format!("There is no plan `{plan_id}`."))
                .await;
            return Ok(());
        };
        if ev.user != plan.requester && !self.permitted(&ev.user, &plan.role).await {
            self.audit_click(ev, what, "refused", format!("not in role {}", plan.role))
                .await;
            self.tell(
                ev,
                format!(
                    "🚫 Only the requester or people in role `{}` can cancel plan `{}`.",
                    plan.role, plan.id
                ),
            )
            .await;
            return Ok(());
        }
        let now = self.now().timestamp_millis();
        if !self
            .store
            .transition_plan(&plan.id, PlanState::Cancelled, now)
            .await?
        {
            self.tell(
                ev,
                format!(
                    "Plan `{}` is {}; it cannot be cancelled now.",
                    plan.id, plan.state
                ),
            )
            .await;
            return Ok(());
        }
        self.store
            .finish_plan(&plan.id, PlanState::Cancelled, "[]", now)
            .await?;
        self.audit_click(ev, what, "cancelled", String::new()).await;
        let text = format!(
            "✖️ Cancelled by {}; nothing was changed.",
            mention(&ev.user)
        );
        self.redraw(&plan, View::Closed(text.clone())).await;
        if let Some(incident) = self.incident_of(&plan).await {
            self.thread(
                &incident,
                &ev.user,
                "cancelled",
                &Message::text(format!("Plan `{}`: {text}", plan.id)),
            )
            .await?;
        }
        Ok(())
    }

    /// Marks a pending plan expired (if nobody else did) and says so.
    async fn expire(&self, plan: &PlanRow) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        if !self
            .store
            .transition_plan(&plan.id, PlanState::Expired, now)
            .await?
        {
            return Ok(());
        }
        self.store
            .finish_plan(&plan.id, PlanState::Expired, "[]", now)
            .await?;
        self.announce_expired(plan).await
    }

    async fn announce_expired(&self, plan: &PlanRow) -> Result<(), ActionError> {
        let text =
            "⌛ Expired unconfirmed; nothing was changed. Run the command again for a fresh plan."
                .to_owned();
        self.redraw(plan, View::Closed(text.clone())).await;
        if let Some(incident) = self.incident_of(plan).await {
            self.thread(
                &incident,
                "scalebot",
                "expired",
                &Message::text(format!("Plan `{}`: {text}", plan.id)),
            )
            .await?;
        }
        Ok(())
    }

    /// Every second until shutdown: escalates due incidents and expires due
    /// plans. Several replicas may run this; the conditional updates let one
    /// of them announce each.
    pub fn spawn_expiry(self: &Arc<Self>) {
        let engine = self.clone();
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if let Err(e) = engine.escalate_due().await {
                    tracing::warn!(error = %e, "escalation sweep failed");
                }
                if let Err(e) = engine.remind_due().await {
                    tracing::warn!(error = %e, "reminder sweep failed");
                }
                if let Err(e) = engine.auto_resolve_due().await {
                    tracing::warn!(error = %e, "auto-resolve sweep failed");
                }
                match engine
                    .store
                    .expire_due_plans(engine.now().timestamp_millis())
                    .await
                {
                    Ok(expired) => {
                        for plan in expired {
                            if let Err(e) = engine.announce_expired(&plan).await {
                                tracing::warn!(plan = %plan.id, error = %e, "expiry not announced");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
            }
        });
    }

    /// Runs a claimed plan: drift check, each change, results, monitor.
    async fn execute(
        self: &Arc<Self>,
        plan: PlanRow,
        approvers: Vec<String>,
    ) -> Result<(), ActionError> {
        let doc = doc_of(&plan);
        let incident = self.incident_of(&plan).await;
        let post = |kind: &'static str, message: Message| {
            let incident = incident.clone();
            async move {
                match &incident {
                    Some(i) => self.thread(i, "scalebot", kind, &message).await.map(|_| ()),
                    None => Ok(()),
                }
            }
        };
        let names: Vec<String> = approvers.iter().map(|a| mention(a)).collect();
        post(
            "confirmed",
            Message::text(format!(
                "▶️ Plan `{}` confirmed by {}. Checking AWS again before changing anything…{}",
                plan.id,
                names.join(" and "),
                if plan.dry_run { " (dry run)" } else { "" }
            )),
        )
        .await?;

        // Drift: what AWS holds now must still be what the plan showed.
        let mut refreshed = Vec::with_capacity(doc.changes.len());
        for change in &doc.changes {
            match change.refresh(self.cloud.as_ref()).await {
                Ok(c) => refreshed.push(c),
                Err(e) => {
                    let now = self.now().timestamp_millis();
                    self.store
                        .finish_plan(&plan.id, PlanState::Failed, "[]", now)
                        .await?;
                    self.redraw(&plan, View::Executed(PlanState::Failed)).await;
                    post(
                        "failed",
                        Message {
                            tone: Tone::Bad,
                            text: format!("❌ Could not read AWS before executing plan `{}`: {e}. Nothing was changed.", plan.id),
                            ..Default::default()
                        },
                    )
                    .await?;
                    return Ok(());
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
        if !drifted.is_empty() {
            let now = self.now().timestamp_millis();
            self.store
                .finish_plan(&plan.id, PlanState::Superseded, "[]", now)
                .await?;
            self.redraw(
                &plan,
                View::Closed(
                    "🔁 Superseded: AWS changed after this plan was shown; nothing was changed."
                        .into(),
                ),
            )
            .await;
            post(
                "drift",
                Message {
                    tone: Tone::Warning,
                    text: format!(
                        "🔁 AWS changed since plan `{}` was shown: {}. Nothing was changed; a fresh plan follows.",
                        plan.id,
                        drifted.join("; ")
                    ),
                    ..Default::default()
                },
            )
            .await?;
            let req = CommandRequest {
                platform: platform_of(&plan.platform),
                user: plan.requester.clone(),
                channel: plan.channel.clone(),
                text: plan.command.clone(),
                incident: plan.incident_id.clone(),
            };
            let inv = match self.catalog.parse(&plan.command) {
                Parsed::Run(inv) => inv,
                _ => {
                    return Err(ActionError::Spec(format!(
                        "`{}` no longer parses",
                        plan.command
                    )));
                }
            };
            let mut proposal = Proposal::new(refreshed, doc.notes.clone());
            proposal.undo_of = plan.undo_of.clone();
            proposal.incident = plan.incident_id.clone();
            self.propose(&req, &inv, proposal, Some(&plan)).await?;
            return Ok(());
        }

        // The rollback command restores from these; a failed snapshot is
        // reported but does not hold up an emergency change.
        if !plan.dry_run {
            let warning = match self
                .take_snapshot(&format!("before plan {}", plan.id))
                .await
            {
                Ok((_, missing)) if missing.is_empty() => None,
                Ok((id, missing)) => Some(format!(
                    "Snapshot {id} of the scaling policies is incomplete ({}).",
                    missing.join("; ")
                )),
                Err(e) => Some(format!("Could not snapshot the scaling policies ({e}).")),
            };
            if let Some(text) = warning {
                post(
                    "snapshot",
                    Message {
                        tone: Tone::Warning,
                        text: format!("⚠️ {text} Continuing with the change."),
                        ..Default::default()
                    },
                )
                .await?;
            }
        }
        let changed_at = self.now();
        let mut results = Vec::with_capacity(refreshed.len());
        for change in &refreshed {
            let (what, from, to) = change.describe();
            let result = if plan.dry_run {
                Ok(format!("DRY RUN: would change {what} from {from} to {to}"))
            } else {
                change.apply(self.cloud.as_ref()).await
            };
            let (ok, note) = match result {
                Ok(note) => (true, note),
                Err(e) => (false, format!("{what}: {e}")),
            };
            results.push(ChangeResult { ok, note });
        }
        let oks = results.iter().filter(|r| r.ok).count();
        let state = if oks == results.len() {
            PlanState::Done
        } else if oks == 0 {
            PlanState::Failed
        } else {
            PlanState::Partial
        };
        let outcome = serde_json::to_string(&results).unwrap_or_else(|_| "[]".into());
        self.store
            .finish_plan(&plan.id, state, &outcome, self.now().timestamp_millis())
            .await?;
        self.redraw(&plan, View::Executed(state)).await;
        let lines: Vec<String> = results
            .iter()
            .map(|r| format!("{} {}", if r.ok { "✅" } else { "❌" }, r.note))
            .collect();
        let undo = if oks > 0 && refreshed.iter().any(|c| c.inverse().is_some()) && !plan.dry_run {
            format!("\nTo revert: `/scale undo {}`", plan.id)
        } else {
            String::new()
        };
        let summary = Message {
            tone: outcome_tone(state),
            text: format!(
                "Plan `{}` {}:\n{}{undo}",
                plan.id,
                match state {
                    PlanState::Done => "executed",
                    PlanState::Partial => "partly executed; nothing was skipped silently",
                    _ => "failed",
                },
                lines.join("\n")
            ),
            ..Default::default()
        };
        post("executed", summary.clone()).await?;
        if incident.as_ref().is_none_or(|i| i.channel != plan.channel) {
            self.chat.post(&plan.channel, None, &summary).await?;
        }
        if !plan.dry_run
            && let Some(incident) = incident
        {
            for (change, result) in refreshed.iter().zip(&results) {
                if let (Change::Reserved { function, to, .. }, true) = (change, result.ok) {
                    self.spawn_monitor(incident.clone(), function.clone(), *to, changed_at);
                }
            }
        }
        Ok(())
    }
}

fn platform_of(s: &str) -> Platform {
    match s {
        "discord" => Platform::Discord,
        "web" => Platform::Web,
        _ => Platform::Slack,
    }
}

fn outcome_tone(state: PlanState) -> Tone {
    match state {
        PlanState::Done => Tone::Good,
        PlanState::Partial => Tone::Warning,
        _ => Tone::Bad,
    }
}
