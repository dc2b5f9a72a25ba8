//! PagerDuty telling us what happened to one of its incidents (a verified
//! v3 webhook): an acknowledgement there acknowledges the scalebot
//! incident here, audited as "PagerDuty: <name>", and PagerDuty is not told
//! back; a resolution there is noted in the thread (once), since an alarm
//! still firing is not resolved by a click in another tool.

use super::IncidentService;
use crate::chat::{Message, Tone};
use crate::engine::request::ActionError;
use crate::pager::{NoticeKind, NoticeOutcome, PagerDutyNotice, incident_of};
use crate::store::{AuditEntry, AuditId, IncidentRow};

/// The event kind of a resolution noted from PagerDuty.
const RESOLVED_THERE: &str = "pagerduty_resolved";

impl IncidentService {
    pub(crate) async fn pagerduty_notice(
        &self,
        notice: &PagerDutyNotice,
    ) -> Result<NoticeOutcome, ActionError> {
        if let NoticeKind::Other(kind) = &notice.kind {
            return Ok(NoticeOutcome::Ignored(format!("event type {kind}")));
        }
        let Some(id) = notice.incident_key.as_deref().and_then(incident_of) else {
            return Ok(NoticeOutcome::Ignored(
                "not an incident scalebot triggered".into(),
            ));
        };
        let Some(incident) = self.store.incident(id).await? else {
            return Ok(NoticeOutcome::Ignored(format!("no incident {id}")));
        };
        let who = format!(
            "PagerDuty: {}",
            notice.agent.as_deref().unwrap_or("someone")
        );
        match notice.kind {
            NoticeKind::Acknowledged => self.acknowledged_there(&incident, &who, notice).await,
            _ => self.resolved_there(&incident, &who).await,
        }
    }

    async fn acknowledged_there(
        &self,
        incident: &IncidentRow,
        who: &str,
        notice: &PagerDutyNotice,
    ) -> Result<NoticeOutcome, ActionError> {
        let now = self.now().timestamp_millis();
        // First, so that the follow-up sweep never echoes it back.
        self.store.pagerduty_acknowledged(&incident.id, now).await?;
        let changed = self
            .store
            .ack_incident(&incident.id, now, self.settings.escalation.ack_stops_clock)
            .await?;
        self.audit_notice(incident, who, notice, changed).await;
        if !changed {
            return Ok(NoticeOutcome::Unchanged);
        }
        let text = format!("👀 Acknowledged in PagerDuty by {}.", name_of(who));
        self.thread(incident, who, "acknowledged", &Message::text(text))
            .await?;
        self.request_redraw(&incident.id);
        Ok(NoticeOutcome::Acknowledged)
    }

    async fn resolved_there(
        &self,
        incident: &IncidentRow,
        who: &str,
    ) -> Result<NoticeOutcome, ActionError> {
        let events = self.store.incident_events(&incident.id).await?;
        if events.iter().any(|e| e.kind == RESOLVED_THERE) {
            return Ok(NoticeOutcome::Unchanged);
        }
        let text = format!(
            "📟 Resolved in PagerDuty by {}. Here it stays {} until it is resolved \
             (`/scale incident {} resolve`) or its alarm recovers.",
            name_of(who),
            incident.state,
            incident.id
        );
        let message = Message {
            tone: Tone::Neutral,
            text: text.into(),
            ..Default::default()
        };
        self.thread(incident, who, RESOLVED_THERE, &message).await?;
        Ok(NoticeOutcome::Noted)
    }

    async fn audit_notice(
        &self,
        incident: &IncidentRow,
        who: &str,
        notice: &PagerDutyNotice,
        changed: bool,
    ) {
        let now = self.now().timestamp_millis();
        let entry = AuditEntry {
            id: AuditId::new().0,
            at_ms: now,
            platform: "pagerduty".into(),
            actor: who.to_owned(),
            channel: incident.channel.clone(),
            command: format!("incident {} ack", incident.id),
            outcome: if changed { "ok" } else { "unchanged" }.into(),
            detail: format!("PagerDuty webhook event {}", notice.event_id),
            finished_ms: Some(now),
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

/// `PagerDuty: Ada` → `Ada`.
fn name_of(who: &str) -> &str {
    who.strip_prefix("PagerDuty: ").unwrap_or(who)
}
