//! What people do to an incident, by button or command: acknowledge,
//! escalate, resolve, keep open, change its severity; and the sweep that
//! resolves recovered incidents after their quiet period.

use super::{IncidentService, level_name};
use crate::chat::{Message, Text, Tone};
use crate::domain::severity::Severity;
use crate::domain::state::IncidentState;
use crate::engine::request::ActionError;
use crate::store::IncidentRow;

/// What a person does to an incident, by button or by command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentVerb {
    Acknowledge,
    Escalate,
    Resolve,
}

impl IncidentVerb {
    /// As the audit log names it.
    pub fn word(self) -> &'static str {
        match self {
            IncidentVerb::Acknowledge => "acknowledge",
            IncidentVerb::Escalate => "escalate",
            IncidentVerb::Resolve => "resolve",
        }
    }
}

impl IncidentService {
    /// The Acknowledge, Escalate and Resolve buttons of an incident's root
    /// message (and the same words after `/scale incident <id>`).
    pub(crate) async fn act(
        &self,
        user: &str,
        verb: IncidentVerb,
        id: &str,
    ) -> Result<Option<String>, ActionError> {
        let Some(incident) = self.store.incident(id).await? else {
            return Ok(Some(format!("There is no incident `{id}`.")));
        };
        let now = self.now().timestamp_millis();
        let (changed, kind, text) = match verb {
            IncidentVerb::Acknowledge => (
                self.store
                    .ack_incident(id, now, self.settings.escalation.ack_stops_clock)
                    .await?,
                "acknowledged",
                Text::from("👀 Acknowledged by ").user(user).markup("."),
            ),
            IncidentVerb::Escalate => {
                if self.escalate_now(&incident, user).await? {
                    return Ok(None);
                }
                return Ok(Some(format!(
                    "Incident `{id}` cannot move up (it is {} at {}).",
                    incident.state,
                    level_name(incident.level)
                )));
            }
            IncidentVerb::Resolve => (
                self.store.resolve_incident(id, now).await?,
                "resolved",
                Text::from("🏁 Resolved by ").user(user).markup("."),
            ),
        };
        if !changed {
            return Ok(Some(format!(
                "Incident `{id}` is {}; nothing changed.",
                incident.state
            )));
        }
        self.thread(&incident, user, kind, &Message::text(text))
            .await?;
        self.request_redraw(id);
        Ok(None)
    }

    /// Resolves recovered incidents whose quiet period is over.
    pub(crate) async fn auto_resolve_due(&self) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        for incident in self.store.due_auto_resolves(now).await? {
            if !self.store.auto_resolve_incident(&incident.id, now).await? {
                continue;
            }
            let quiet = self
                .settings
                .escalation
                .resolve_after_ok_seconds
                .unwrap_or(0)
                / 60;
            self.thread(
                &incident,
                "scalebot",
                "resolved",
                &Message {
                    tone: Tone::Good,
                    text: format!(
                        "🏁 Resolved automatically: the alarm stayed OK for {quiet} min."
                    )
                    .into(),
                    ..Default::default()
                },
            )
            .await?;
            self.request_redraw(&incident.id);
        }
        Ok(())
    }

    /// `/scale incident <id> keep`: a recovered incident stays open.
    pub(crate) async fn keep_open(
        &self,
        incident: &IncidentRow,
        user: &str,
    ) -> Result<bool, ActionError> {
        if incident.state != IncidentState::Recovered {
            return Ok(false);
        }
        let now = self.now().timestamp_millis();
        self.store
            .set_auto_resolve(&incident.id, IncidentState::Recovered, None, now)
            .await?;
        self.thread(
            incident,
            user,
            "kept_open",
            &Message::text(
                Text::from("📌 Kept open by ")
                    .user(user)
                    .markup("; it will not resolve itself."),
            ),
        )
        .await?;
        Ok(true)
    }

    /// `/scale incident <id> severity <level>`: the new severity on the
    /// root message and a line in the thread; the level stays (escalating
    /// is its own verb). The command itself is audited by the command
    /// service; the caller's permission is checked before this runs.
    pub(crate) async fn change_severity(
        &self,
        incident: &IncidentRow,
        user: &str,
        words: Option<&str>,
    ) -> Result<String, ActionError> {
        let id = &incident.id;
        let severity: Severity = words
            .filter(|w| !w.trim().is_empty())
            .ok_or_else(|| {
                ActionError::Refused(format!(
                    "say which severity: `/scale incident {id} severity <level>`, the level one of {}",
                    Severity::choices()
                ))
            })?
            .parse()
            .map_err(|e: crate::domain::DomainError| ActionError::Refused(e.0))?;
        if incident.severity == Some(severity) {
            return Ok(format!(
                "Incident `{id}` is already {severity}; nothing changed."
            ));
        }
        let now = self.now().timestamp_millis();
        if !self.store.set_incident_severity(id, severity, now).await? {
            return Ok(format!(
                "Incident `{id}` is {}; nothing changed.",
                incident.state
            ));
        }
        let was = incident
            .severity
            .map(|s| format!(" from {s}"))
            .unwrap_or_default();
        let text = Text::from(format!("🏷️ Severity changed{was} to *{severity}* by "))
            .user(user)
            .markup(".");
        self.thread(incident, user, "severity", &Message::text(text))
            .await?;
        self.request_redraw(id);
        Ok(format!("Incident `{id}` is now {}.", severity.badge()))
    }
}
