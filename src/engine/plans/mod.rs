//! Confirmation: a plan is stored, posted with Confirm and Cancel, approved
//! by permitted people, claimed atomically, checked for drift, executed
//! change by change, and expired when nobody confirms it in time.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod change;
mod clicks;
mod execute;
mod expiry;
mod reap;
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
    /// This replica, as the holder of the plans it executes.
    holder: String,
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
    pub holder: String,
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
            holder: p.holder,
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
        let Approval {
            role,
            approvals,
            destructive,
        } = self
            .approval_for(inv, proposal.undo_of.as_deref(), supersedes)
            .await?;
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

/// Who must confirm a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Approval {
    role: String,
    approvals: i64,
    destructive: bool,
}

impl Approval {
    fn of(plan: &PlanRow) -> Self {
        Self {
            role: plan.role.clone(),
            approvals: plan.approvals_needed,
            destructive: plan.destructive,
        }
    }

    /// The most demanding of these rules and those of `others`: the most
    /// approvals (with that plan's role), destructive if any was.
    fn strictest(self, others: &[PlanRow]) -> Self {
        others.iter().fold(self, |best, p| {
            let other = Approval::of(p);
            let destructive = best.destructive || other.destructive;
            let mut pick = if other.approvals > best.approvals {
                other
            } else {
                best
            };
            pick.destructive = destructive;
            pick
        })
    }
}

/// How far back an undo chain is followed; a longer one is refused.
const UNDO_CHAIN_MAX: usize = 16;

impl PlanService {
    /// Who must confirm: the command file's rule (or the superseded
    /// plan's), made stricter by every plan an undo reverts, so that one
    /// person cannot take back a two-person decision.
    async fn approval_for(
        &self,
        inv: &Invocation,
        undo_of: Option<&str>,
        supersedes: Option<&PlanRow>,
    ) -> Result<Approval, ActionError> {
        let own = match (&inv.spec.confirm, supersedes) {
            (Some(c), _) => Approval {
                role: c.role.clone(),
                approvals: i64::from(c.approvals),
                destructive: c.destructive,
            },
            (None, Some(p)) => Approval::of(p),
            (None, None) => Approval {
                role: "operators".to_owned(),
                approvals: 1,
                destructive: false,
            },
        };
        Ok(own.strictest(&self.undo_chain(undo_of).await?))
    }

    /// The plan an undo reverts, the plan that one reverted, and so on.
    async fn undo_chain(&self, first: Option<&str>) -> Result<Vec<PlanRow>, ActionError> {
        let mut chain = Vec::new();
        let mut next = first.map(str::to_owned);
        while let Some(id) = next {
            if chain.len() >= UNDO_CHAIN_MAX {
                return Err(ActionError::Refused(format!(
                    "plan `{id}` undoes a chain of more than {UNDO_CHAIN_MAX} plans; run the command itself instead"
                )));
            }
            let Some(plan) = self.store.plan(&id).await? else {
                break;
            };
            next = plan.undo_of.clone();
            chain.push(plan);
        }
        Ok(chain)
    }
}

fn outcome_tone(state: PlanState) -> Tone {
    match state {
        PlanState::Done => Tone::Good,
        PlanState::Partial => Tone::Warning,
        _ => Tone::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, role: &str, approvals: i64, destructive: bool) -> PlanRow {
        PlanRow {
            id: id.into(),
            command: "scale-down".into(),
            requester: "U1".into(),
            platform: "slack".into(),
            channel: "C1".into(),
            incident_id: None,
            changes: "{}".into(),
            role: role.into(),
            approvals_needed: approvals,
            destructive,
            dry_run: false,
            state: PlanState::Done,
            created_ms: 0,
            expires_ms: 0,
            message_channel: None,
            message_id: None,
            outcome: None,
            undo_of: None,
            finished_ms: None,
        }
    }

    #[test]
    fn an_undo_needs_what_the_plans_it_reverts_needed() {
        let undo = Approval {
            role: "operators".into(),
            approvals: 1,
            destructive: false,
        };
        // undo(P2) where P2 = undo(P1) and P1 was a two-person scale-down.
        let chain = [
            plan("P2", "operators", 1, false),
            plan("P1", "operators", 2, true),
        ];
        assert_eq!(
            undo.clone().strictest(&chain),
            Approval {
                role: "operators".into(),
                approvals: 2,
                destructive: true,
            }
        );
        assert_eq!(undo.clone().strictest(&[]), undo);
    }
}
