//! The one path for messages from AWS that the bot has stored and owes
//! handling: SNS deliveries (`/sns`), the demo's simulated alarms and the
//! rows a stopped process left behind. Each is handled and its outcome
//! returned for the work queue (`engine::inbox`) to record; a message that
//! is not an alarm is said once, not dropped and not retried for ever.

use crate::alarm::Alarm;
use crate::chat::Message;
use crate::store::RepeatNote;

use super::IncidentService;
use crate::engine::request::ActionError;

/// What a stored message turned out to be.
#[derive(Debug)]
pub enum Inbound {
    Alarm(Box<Alarm>),
    /// The subscription was confirmed with AWS.
    Subscribed {
        topic: String,
    },
    Unsubscribed {
        topic: String,
    },
    /// On an allowed topic, but not something the bot acts on.
    NotUnderstood {
        topic: String,
        subject: Option<String>,
        why: String,
    },
}

impl IncidentService {
    /// Handles one stored message; what was done with it, for its row,
    /// and a repeat to count with its finish. An error leaves it to be
    /// taken up again. `superseded`: a newer state
    /// change of the same alarm is stored, so this one opens nothing.
    pub async fn take_in(
        self: &std::sync::Arc<Self>,
        message_id: &str,
        inbound: Inbound,
        superseded: bool,
    ) -> Result<(String, Option<RepeatNote>), ActionError> {
        let channel = &self.settings.channels.incidents;
        let (outcome, notice) = match inbound {
            Inbound::Alarm(alarm) => {
                let (outcome, repeat) = self.on_alarm(message_id, *alarm, superseded).await?;
                return Ok((outcome.to_owned(), repeat));
            }
            Inbound::Subscribed { topic } => (
                "subscribed".to_owned(),
                Some(format!(
                    "🔔 Subscribed to SNS topic `{topic}`: its alarms now open incidents here."
                )),
            ),
            Inbound::Unsubscribed { topic } => (
                "unsubscribed".to_owned(),
                Some(format!(
                    "🔕 SNS topic `{topic}` unsubscribed this endpoint."
                )),
            ),
            Inbound::NotUnderstood {
                topic,
                subject,
                why,
            } => {
                tracing::info!(message_id, %topic, %why, "SNS message is not an alarm");
                let text = format!(
                    "❔ A message on `{topic}` was not understood and is not acted on: {}{why}.",
                    subject
                        .map(|s| format!("“{}”: ", crate::domain::truncate(&s, 120)))
                        .unwrap_or_default()
                );
                (format!("not understood: {why}"), Some(text))
            }
        };
        if let Some(text) = notice {
            self.chat.post(channel, None, &Message::text(text)).await?;
        }
        Ok((outcome, None))
    }

    /// A state change older than one already stored for the same alarm
    /// (delivered late, or replayed): it goes into the open incident's
    /// timeline, and changes nothing else.
    pub async fn note_stale(&self, alarm: &Alarm) -> Result<(), ActionError> {
        let name = alarm
            .alarm_name
            .clone()
            .unwrap_or_else(|| "unnamed alarm".into());
        let key = self.dedup_key(alarm, &name);
        if let Some(incident) = self.store.open_incident_by_key(&key).await? {
            let at = alarm
                .state_change_time
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "an unknown time".into());
            let body = format!(
                "`{name}` reported {} as of {at}, after a newer state change; not applied.",
                alarm
                    .new_state_value
                    .as_deref()
                    .unwrap_or("an unknown state"),
            );
            self.record_event(&incident, "cloudwatch", "stale_state", &body)
                .await?;
        }
        Ok(())
    }
}
