//! Incidents as the engine uses them: opened (or joined) for every changing
//! command, with a root message in the incident channel and every step a
//! reply in its thread. Each step is stored before it is posted.

use crate::chat::{Message, MessageRef};
use crate::domain::state::IncidentState;
use crate::store::{IncidentEvent, IncidentRow};

use super::root::RootContext;
use super::{ActionError, Engine};

/// What a new incident starts with.
pub(super) struct NewIncident {
    pub title: String,
    pub level: i64,
    /// `manual` or `alarm`.
    pub source: &'static str,
    pub dedup_key: Option<String>,
    /// The first event's text (the alarm's reason); the title when empty.
    pub reason: String,
    /// What the root message is drawn from.
    pub context: RootContext,
    /// Who is already on it: the requester of a runbook action is, so the
    /// incident starts acknowledged and nobody is reminded to pick it up.
    pub acknowledged_by: Option<String>,
}

/// Short ids people can type: `INC-7F3K2Q`, `P-9XK2LD`.
pub(super) fn short_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("{prefix}-{}", &raw[..6])
}

pub(crate) fn level_name(level: i64) -> &'static str {
    match level {
        1 => "L1 automated response",
        2 => "L2 operations team",
        3 => "L3 engineering team",
        _ => "L4 emergency response",
    }
}

impl Engine {
    /// The incident a command's plan belongs to: the one given if it is
    /// still open, otherwise a new L2 "manual intervention" incident.
    pub(super) async fn incident_for(
        &self,
        requester: &str,
        command: &str,
        existing: Option<&str>,
    ) -> Result<IncidentRow, ActionError> {
        if let Some(id) = existing
            && let Some(found) = self.store.incident(id).await?
            && found.state != IncidentState::Resolved
        {
            return Ok(found);
        }
        let new = NewIncident {
            title: format!("Manual intervention: /scale {command}"),
            level: 2,
            source: "manual",
            dedup_key: None,
            reason: String::new(),
            context: RootContext::Manual {
                requester: requester.to_owned(),
            },
            acknowledged_by: Some(requester.to_owned()),
        };
        self.open_incident(new, requester).await
    }

    /// Stores a new incident and its "opened" event, then posts its root
    /// message; returns it with the root's handle.
    pub(super) async fn open_incident(
        &self,
        new: NewIncident,
        actor: &str,
    ) -> Result<IncidentRow, ActionError> {
        let now = self.now().timestamp_millis();
        let mut incident = IncidentRow {
            id: short_id("INC"),
            title: new.title,
            level: new.level,
            state: if new.acknowledged_by.is_some() {
                IncidentState::Acknowledged
            } else {
                IncidentState::Open
            },
            source: new.source.into(),
            dedup_key: new.dedup_key,
            channel: self.settings.channels.incidents.clone(),
            root_ts: None,
            opened_ms: now,
            acked_ms: new.acknowledged_by.as_ref().map(|_| now),
            resolved_ms: None,
            updated_ms: now,
            context: serde_json::to_string(&new.context).ok(),
        };
        self.store.insert_incident(&incident).await?;
        let acked = new.acknowledged_by.is_some();
        let escalate_at = if acked && self.settings.escalation.ack_stops_clock {
            None
        } else {
            self.escalation_deadline(incident.level, now)
        };
        self.store
            .set_next_escalation(&incident.id, escalate_at)
            .await?;
        if !acked {
            self.store
                .set_next_reminder(&incident.id, self.reminder_deadline(incident.level, now))
                .await?;
        }
        let body = if new.reason.is_empty() {
            incident.title.clone()
        } else {
            new.reason
        };
        self.record_event(&incident, actor, "opened", &body).await?;
        if let Some(who) = &new.acknowledged_by {
            self.record_event(&incident, who, "acknowledged", "on it as the requester")
                .await?;
        }
        let posted = self
            .chat
            .post(&incident.channel, None, &self.root_message(&incident))
            .await?;
        self.store
            .set_incident_root(&incident.id, &posted.id)
            .await?;
        incident.root_ts = Some(posted.id);
        incident.channel = posted.channel;
        Ok(incident)
    }

    /// Stores an incident event that has no message of its own.
    pub(super) async fn record_event(
        &self,
        incident: &IncidentRow,
        actor: &str,
        kind: &str,
        body: &str,
    ) -> Result<String, ActionError> {
        let event = IncidentEvent {
            id: uuid::Uuid::new_v4().to_string(),
            incident_id: incident.id.clone(),
            at_ms: self.now().timestamp_millis(),
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            body: body.to_owned(),
            message_ts: None,
        };
        self.store.add_incident_event(&event).await?;
        Ok(event.id)
    }

    /// Stores an event, then posts it as a reply in the incident's thread.
    pub(super) async fn thread(
        &self,
        incident: &IncidentRow,
        actor: &str,
        kind: &str,
        message: &Message,
    ) -> Result<MessageRef, ActionError> {
        let event_id = self
            .record_event(incident, actor, kind, &message.fallback())
            .await?;
        let root = incident.root_ts.as_ref().map(|ts| MessageRef {
            channel: incident.channel.clone(),
            id: ts.clone(),
        });
        let posted = self
            .chat
            .post(&incident.channel, root.as_ref(), message)
            .await?;
        self.store.set_event_message(&event_id, &posted.id).await?;
        Ok(posted)
    }
}
