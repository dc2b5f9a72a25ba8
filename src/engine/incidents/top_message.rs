//! An incident's root message, drawn from what the store holds (the row and
//! the context it was opened with), so every redraw after an acknowledgement,
//! an escalation, a recovery or a resolution shows the whole incident again.
//! Redraws are coalesced: during an alarm storm many changes to one incident
//! become one `chat.update`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::IncidentService;
use super::level_name;
use crate::alarm::Alarm;
use crate::chat::{Button, ButtonAction, ButtonStyle, Message, MessageRef, Text, Tone};
use crate::domain::state::IncidentState;
use crate::engine::request::ActionError;
use crate::store::IncidentRow;

/// What an incident was opened from, stored with it as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RootContext {
    Alarm(Box<Alarm>),
    Manual { requester: String },
}

impl RootContext {
    pub(crate) fn of(incident: &IncidentRow) -> Option<Self> {
        serde_json::from_str(incident.context.as_deref()?).ok()
    }
}

/// How long changes to one incident are gathered before its root is redrawn.
const REDRAW_DELAY: Duration = Duration::from_millis(250);

fn button(label: &str, action: ButtonAction, style: ButtonStyle) -> Button {
    Button {
        label: label.into(),
        action,
        style,
        confirm: None,
    }
}

impl IncidentService {
    /// The root message as the incident stands now.
    pub(crate) fn root_message(&self, incident: &IncidentRow) -> Message {
        let context = RootContext::of(incident);
        let done = incident.state == IncidentState::Resolved;
        let mut message = match &context {
            Some(RootContext::Alarm(alarm)) => self.alarm_root(incident, alarm),
            Some(RootContext::Manual { requester }) => Message {
                text: Text::from("Opened by ")
                    .user(requester)
                    .markup(" for a runbook action; every step follows in this thread."),
                ..Default::default()
            },
            None => Message::text("Every step follows in this thread."),
        };
        message.title = Some(format!("{} · {}", incident.id, incident.title));
        message.tone = match incident.state {
            IncidentState::Resolved | IncidentState::Recovered => Tone::Good,
            IncidentState::Acknowledged => Tone::Warning,
            _ if matches!(context, Some(RootContext::Alarm(_))) => Tone::Bad,
            _ => Tone::Warning,
        };
        // The alarm's own fields (metric) come after the incident's.
        let extra: Vec<_> = message.fields.drain(..).collect();
        for (label, value) in self.incident_fields(incident) {
            message = message.field(label, value);
        }
        message.fields.extend(extra);
        let runbook: Vec<Button> = message.buttons.drain(..).collect();
        if !done {
            message.buttons = incident_buttons(incident);
            message.buttons.extend(runbook);
        }
        message
    }

    /// Severity, level, state, start, and when it was acknowledged and resolved.
    fn incident_fields(&self, incident: &IncidentRow) -> Vec<(&'static str, String)> {
        let opened =
            chrono::DateTime::from_timestamp_millis(incident.opened_ms).unwrap_or_default();
        let mut fields: Vec<(&'static str, String)> = incident
            .severity
            .map(|s| ("Severity", s.badge()))
            .into_iter()
            .collect();
        fields.extend([
            ("Level", level_name(incident.level).to_owned()),
            ("State", incident.state.to_string()),
            ("Started", crate::format::stamp(opened, self.tz)),
        ]);
        let since = |label: &'static str, at_ms: Option<i64>| {
            let at = at_ms.and_then(chrono::DateTime::from_timestamp_millis)?;
            let after = (at_ms.unwrap_or(0) - incident.opened_ms) / 60_000;
            let when = crate::format::time_of_day(at, self.tz);
            Some((label, format!("{when} ({after} min)")))
        };
        fields.extend(since("Acknowledged", incident.acked_ms));
        fields.extend(since("Resolved", incident.resolved_ms));
        fields
    }

    /// Redraws the root soon, once for however many changes arrive meanwhile.
    pub(crate) fn request_redraw(&self, id: &str) {
        if self.redraws.insert(id.to_owned(), ()).is_some() {
            return;
        }
        let Some(engine) = self.me.upgrade() else {
            return;
        };
        let id = id.to_owned();
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(REDRAW_DELAY) => {}
            }
            // Removed before reading, so a change after the read asks again.
            engine.redraws.remove(&id);
            if let Err(e) = engine.redraw_now(&id).await {
                tracing::warn!(incident = %id, error = %e, "incident root not redrawn");
            }
        });
    }

    async fn redraw_now(self: &Arc<Self>, id: &str) -> Result<(), ActionError> {
        let Some(incident) = self.store.incident(id).await? else {
            return Ok(());
        };
        let Some(ts) = &incident.root_message else {
            return Ok(());
        };
        let at = MessageRef {
            channel: incident.channel.clone(),
            id: ts.clone(),
        };
        self.chat.update(&at, &self.root_message(&incident)).await?;
        Ok(())
    }
}

/// Acknowledge (while nobody has), Escalate (below L4), Resolve.
fn incident_buttons(incident: &IncidentRow) -> Vec<Button> {
    let id = || incident.id.clone();
    let mut buttons = Vec::new();
    if incident.state == IncidentState::Open {
        let ack = ButtonAction::Acknowledge { incident: id() };
        buttons.push(button("Acknowledge", ack, ButtonStyle::Primary));
    }
    if incident.level < 4 {
        let up = ButtonAction::Escalate { incident: id() };
        buttons.push(button("Escalate", up, ButtonStyle::Default));
    }
    let done = ButtonAction::Resolve { incident: id() };
    buttons.push(button("Resolve", done, ButtonStyle::Default));
    buttons
}
