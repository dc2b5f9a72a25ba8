//! Confirmation: a plan is stored, posted with Confirm and Cancel, approved
//! by permitted people, claimed atomically, checked for drift, executed
//! change by change, and expired when nobody confirms it in time.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod change;
mod clicks;
mod execute;
mod expiry;
mod render;
mod undo;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::change::Change;
use super::incidents::IncidentService;
use super::request::{ActionError, CommandRequest, Proposal};
use crate::catalog::Catalog;
use crate::catalog::Invocation;
use crate::chat::Chat;
use crate::chat::{Message, Text, Tone};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::domain::short_id;
use crate::domain::state::PlanState;
use crate::reports::ReportService;
use crate::store::Store;
use crate::store::{IncidentRow, PlanRow};

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
            platform: req.via.clone(),
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
            message_id: None,
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

    pub(super) async fn incident_of(&self, plan: &PlanRow) -> Option<IncidentRow> {
        match &plan.incident_id {
            Some(id) => self.store.incident(id).await.ok().flatten(),
            None => None,
        }
    }
}

fn outcome_tone(state: PlanState) -> Tone {
    match state {
        PlanState::Done => Tone::Good,
        PlanState::Partial => Tone::Warning,
        _ => Tone::Bad,
    }
}
