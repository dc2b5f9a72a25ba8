//! Clicks on a plan: Confirm (refused, counted, or the claim that runs
//! it), Cancel, and what the clicker is told.

use std::sync::Arc;

use super::{PlanService, View};
use crate::chat::{Message, Text};
use crate::domain::state::PlanState;
use crate::engine::request::{ActionError, ButtonEvent};
use crate::store::{AuditEntry, AuditId, PlanRow};

impl PlanService {
    pub(crate) async fn tell(&self, ev: &ButtonEvent, text: String) {
        if let Err(e) = self
            .chat
            .ephemeral(&ev.channel, &ev.user, &Message::text(text))
            .await
        {
            tracing::warn!(error = %e, "ephemeral reply failed");
        }
    }

    /// Whether `user` holds `role` (see `engine::access`).
    pub(super) async fn permitted(&self, user: &str, role: &str) -> bool {
        crate::engine::access::holds(&self.settings, self.chat.as_ref(), user, role).await
    }

    /// Whether the clicker is the person who asked for the plan, from
    /// this account or another of theirs (`[people]`).
    fn is_requester(&self, ev: &ButtonEvent, plan: &PlanRow) -> bool {
        self.settings
            .people
            .same((&ev.via, &ev.user), (&plan.platform, &plan.requester))
    }

    pub(super) async fn audit_click(
        &self,
        ev: &ButtonEvent,
        what: String,
        outcome: &str,
        detail: String,
    ) {
        let entry = AuditEntry {
            id: AuditId::new().0,
            at_ms: self.now().timestamp_millis(),
            platform: ev.via.clone(),
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

    /// A Confirm click: refused with a reason, counted as an approval, or
    /// (the last approval needed) the one claim that runs the plan.
    pub(crate) async fn confirm_click(
        self: &Arc<Self>,
        ev: &ButtonEvent,
        plan_id: &str,
    ) -> Result<(), ActionError> {
        let what = format!("confirm {plan_id}");
        let now = self.now().timestamp_millis();
        let plan = match self.store.plan(plan_id).await? {
            Some(p) if p.state == PlanState::Pending && now >= p.expires_ms => {
                self.expire(&p).await?;
                self.store.plan(plan_id).await?
            }
            other => other,
        };
        if let Some((outcome, detail, text)) = self.refusal(plan.as_ref(), plan_id, ev).await {
            self.audit_click(ev, what, outcome, detail).await;
            self.tell(ev, text).await;
            return Ok(());
        }
        let Some(plan) = plan else {
            return Ok(());
        };
        // One approval per person, whichever of their accounts clicks.
        let person = self.settings.people.person(&ev.via, &ev.user);
        let fresh = self
            .store
            .add_approval(&plan.id, &ev.user, &person, now)
            .await?;
        let approvals = self.store.approvals(&plan.id).await?;
        let count = format!("{} of {}", approvals.len(), plan.approvals_needed);
        self.audit_click(ev, what, "approved", count).await;
        if (approvals.len() as i64) < plan.approvals_needed {
            return self.count_approval(ev, &plan, &approvals, fresh).await;
        }
        // The one conditional update that decides who runs the plan.
        let until = crate::store::now_ms() + super::reap::LEASE_MS;
        if !self
            .store
            .start_plan(&plan.id, now, &self.holder, until)
            .await?
        {
            let text = format!(
                "Plan `{}` is already being handled; nothing more was done.",
                plan.id
            );
            self.tell(ev, text).await;
            return Ok(());
        }
        self.execute(plan, approvals).await
    }

    /// Why this click may not approve the plan, as (audit outcome, audit
    /// detail, what the clicker is told); `None` when it may.
    pub(super) async fn refusal(
        &self,
        plan: Option<&PlanRow>,
        plan_id: &str,
        ev: &ButtonEvent,
    ) -> Option<(&'static str, String, String)> {
        let Some(plan) = plan else {
            let text = format!("There is no plan `{plan_id}`.");
            return Some(("rejected", "unknown plan".into(), text));
        };
        if plan.state != PlanState::Pending {
            let text = format!("Plan `{}` is {}; nothing was done.", plan.id, plan.state);
            return Some(("rejected", format!("plan is {}", plan.state), text));
        }
        if !self.permitted(&ev.user, &plan.role).await {
            let text = format!(
                "🚫 Only people in role `{}` can confirm plan `{}`. Nothing was changed.",
                plan.role, plan.id
            );
            return Some(("refused", format!("not in role {}", plan.role), text));
        }
        if plan.approvals_needed >= 2 && self.is_requester(ev, plan) {
            let text = format!(
                "🚫 You requested plan `{}`; it needs {} other people to confirm it.",
                plan.id, plan.approvals_needed
            );
            return Some(("refused", "self-approval".into(), text));
        }
        None
    }

    /// An approval that is not yet the last one needed: said in the
    /// thread (once per person) and drawn on the plan.
    pub(super) async fn count_approval(
        &self,
        ev: &ButtonEvent,
        plan: &PlanRow,
        approvals: &[String],
        fresh: bool,
    ) -> Result<(), ActionError> {
        if !fresh {
            let text = format!(
                "You have already approved plan `{}` (each person counts once, \
                 whichever account they click from).",
                plan.id
            );
            self.tell(ev, text).await;
            return Ok(());
        }
        if let Some(incident) = self.incident_of(plan).await {
            let text = Text::from("👍 ").user(&ev.user).markup(format!(
                " approved plan `{}` ({} of {}).",
                plan.id,
                approvals.len(),
                plan.approvals_needed
            ));
            self.incidents
                .thread(&incident, &ev.user, "approval", &Message::text(text))
                .await?;
        }
        self.redraw(plan, View::Pending(approvals)).await;
        Ok(())
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
        if !self.is_requester(ev, &plan) && !self.permitted(&ev.user, &plan.role).await {
            self.audit_click(ev, what, "refused", format!("not in role {}", plan.role))
                .await;
            self.tell(
                ev,
                format!(
                    "🚫 Only the requester or people in role `{}` can cancel plan `{}`. Nothing was changed.",
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
}
