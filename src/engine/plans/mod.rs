//! Confirmation: a plan is stored, posted with Confirm and Cancel, approved
//! by permitted people, claimed atomically, checked for drift, executed
//! change by change, and expired when nobody confirms it in time.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod change;
mod execute;
mod undo;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::change::Change;
use super::incidents::IncidentService;
use super::request::{ActionError, ButtonEvent, CommandRequest, Proposal};
use crate::catalog::Catalog;
use crate::catalog::Invocation;
use crate::chat::Chat;
use crate::chat::{Button, ButtonAction, ButtonStyle, Confirm, Message, MessageRef, Text, Tone};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::domain::short_id;
use crate::domain::state::PlanState;
use crate::reports::ReportService;
use crate::store::Store;
use crate::store::{AuditEntry, AuditId, IncidentRow, PlanRow};

/// Plans: proposed, drawn, approved, claimed, executed (drift check →
/// snapshot → apply → summary), expired, undone.
pub struct PlanService {
    settings: Arc<Settings>,
    catalog: Arc<Catalog>,
    cloud: Arc<dyn Cloud>,
    chat: Arc<dyn Chat>,
    store: Store,
    clock: Arc<dyn Clock>,
    tz: Tz,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    incidents: Arc<IncidentService>,
    reports: Arc<ReportService>,
}

pub struct PlanParts {
    pub settings: Arc<Settings>,
    pub catalog: Arc<Catalog>,
    pub cloud: Arc<dyn Cloud>,
    pub chat: Arc<dyn Chat>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub tz: Tz,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    pub incidents: Arc<IncidentService>,
    pub reports: Arc<ReportService>,
}

impl PlanService {
    pub fn new(p: PlanParts) -> Arc<Self> {
        Arc::new(Self {
            settings: p.settings,
            catalog: p.catalog,
            cloud: p.cloud,
            chat: p.chat,
            store: p.store,
            clock: p.clock,
            tz: p.tz,
            tasks: p.tasks,
            shutdown: p.shutdown,
            incidents: p.incidents,
            reports: p.reports,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
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
    Closed(Text),
}

impl PlanService {
    /// Stores a plan, then posts it in the incident's thread with its
    /// buttons, and a pointer in the channel the command came from.
    pub(crate) async fn propose(
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
            .incidents
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
            .incidents
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
            let mut pointer = Message::text(
                Text::from(format!(
                    "📋 Plan `{}` for `/scale {}` is waiting for confirmation in the thread of {} in ",
                    plan.id, plan.command, incident.id
                ))
                .channel(incident.channel.clone())
                .markup("."),
            );
            if plan.dry_run {
                pointer.text.push_markup(" (dry run)");
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
                let mut s = Text::from("Requested by ")
                    .user(&plan.requester)
                    .markup(format!(
                        ". Needs confirmation by {who}. Expires at {}.",
                        crate::format::time_of_day(expires, self.tz)
                    ));
                if !approved.is_empty() {
                    s = s
                        .markup(format!(
                            "\nApproved so far ({} of {}): ",
                            approved.len(),
                            plan.approvals_needed
                        ))
                        .users(approved.iter(), ", ");
                }
                (Tone::Warning, s)
            }
            View::Executed(state) => (
                outcome_tone(*state),
                Text::from("Requested by ")
                    .user(&plan.requester)
                    .markup(match state {
                        PlanState::Done => ". ✅ Executed; the results are in this thread.",
                        PlanState::Partial => {
                            ". ⚠️ Partly executed; the results are in this thread."
                        }
                        _ => ". ❌ Failed; the errors are in this thread.",
                    }),
            ),
            View::Closed(s) => (Tone::Neutral, s.clone()),
        };
        let mut text = status;
        if plan.dry_run {
            text.push_markup("\n*DRY RUN*: nothing will be changed in AWS.");
        }
        for note in &doc.notes {
            text.push_markup(format!("\n• {note}"));
        }
        let mut message = Message {
            title: Some(format!("Plan {}: /scale {}", plan.id, plan.command)),
            tone,
            text,
            footer: plan
                .undo_of
                .as_ref()
                .map(|u| Text::from(format!("Undoes plan {u}"))),
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

    pub(crate) async fn tell(&self, ev: &ButtonEvent, text: String) {
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

    pub(crate) async fn confirm_click(
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
                    self.incidents
                        .thread(
                            &incident,
                            &ev.user,
                            "approval",
                            &Message::text(Text::from("👍 ").user(&ev.user).markup(format!(
                                " approved plan `{}` ({} of {}).",
                                plan.id,
                                approvals.len(),
                                plan.approvals_needed
                            ))),
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

    pub(crate) async fn cancel_click(
        &self,
        ev: &ButtonEvent,
        plan_id: &str,
    ) -> Result<(), ActionError> {
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
        let text = Text::from("✖️ Cancelled by ")
            .user(&ev.user)
            .markup("; nothing was changed.");
        self.redraw(&plan, View::Closed(text.clone())).await;
        if let Some(incident) = self.incident_of(&plan).await {
            self.incidents
                .thread(
                    &incident,
                    &ev.user,
                    "cancelled",
                    &Message::text(
                        Text::from(format!("Plan `{}`: ", plan.id)).append(text.clone()),
                    ),
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
        self.redraw(plan, View::Closed(text.as_str().into())).await;
        if let Some(incident) = self.incident_of(plan).await {
            self.incidents
                .thread(
                    &incident,
                    "scalebot",
                    "expired",
                    &Message::text(
                        Text::from(format!("Plan `{}`: ", plan.id)).append(text.clone().into()),
                    ),
                )
                .await?;
        }
        Ok(())
    }

    /// Every second until shutdown: expires due plans. Several replicas
    /// may run this; the conditional update lets one of them announce each.
    pub fn spawn_expiry(self: &Arc<Self>) {
        let me = self.clone();
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                match me.store.expire_due_plans(me.now().timestamp_millis()).await {
                    Ok(expired) => {
                        for plan in expired {
                            if let Err(e) = me.announce_expired(&plan).await {
                                tracing::warn!(plan = %plan.id, error = %e, "expiry not announced");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
            }
        });
    }
}

fn outcome_tone(state: PlanState) -> Tone {
    match state {
        PlanState::Done => Tone::Good,
        PlanState::Partial => Tone::Warning,
        _ => Tone::Bad,
    }
}
