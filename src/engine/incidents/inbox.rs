//! The one path for messages from AWS that the bot has stored and owes
//! handling: SNS deliveries (`/sns`), the demo's simulated alarms and the
//! rows a stopped process left behind. Each is handled, then marked
//! processed; a message that is not an alarm is said once, not dropped and
//! not retried for ever.

use crate::alarm::Alarm;
use crate::chat::Message;

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
    /// Handles one stored message and marks it processed. An error leaves
    /// it unprocessed, so that it is taken up again.
    pub async fn take_in(
        self: &std::sync::Arc<Self>,
        message_id: &str,
        inbound: Inbound,
    ) -> Result<(), ActionError> {
        let channel = &self.settings.channels.incidents;
        let notice = match inbound {
            Inbound::Alarm(alarm) => {
                self.on_alarm(*alarm).await?;
                None
            }
            Inbound::Subscribed { topic } => Some(format!(
                "🔔 Subscribed to SNS topic `{topic}`: its alarms now open incidents here."
            )),
            Inbound::Unsubscribed { topic } => Some(format!(
                "🔕 SNS topic `{topic}` unsubscribed this endpoint."
            )),
            Inbound::NotUnderstood {
                topic,
                subject,
                why,
            } => {
                tracing::info!(message_id, %topic, %why, "SNS message is not an alarm");
                Some(format!(
                    "❔ A message on `{topic}` was not understood and is not acted on: {}{why}.",
                    subject
                        .map(|s| format!("“{}”: ", crate::domain::truncate(&s, 120)))
                        .unwrap_or_default()
                ))
            }
        };
        if let Some(text) = notice {
            self.chat.post(channel, None, &Message::text(text)).await?;
        }
        self.store
            .mark_sns_processed(message_id, self.now().timestamp_millis())
            .await?;
        Ok(())
    }
}
