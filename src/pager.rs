//! The port for waking people outside chat: an SNS topic (SMS, e-mail and
//! whatever else is subscribed to it) and PagerDuty's Events API v2. The
//! engine stores each page as owed work and calls these to send it; the
//! adapters are `aws::sns_publish` and `pagerduty::events`.

use std::sync::Arc;

use async_trait::async_trait;

/// Why a page was not delivered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PageError {
    /// Worth another attempt later: a throttle, a 5xx, a timeout, and any
    /// AWS error (a topic or permission may be fixed while we wait).
    #[error("{0}")]
    Retry(String),
    /// The peer refused the page itself (PagerDuty's 400 "invalid event"),
    /// or nothing is configured to send it: trying again cannot help.
    #[error("{0}")]
    Refused(String),
}

/// One message to an SNS topic, written for every kind of subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsPage {
    pub topic: String,
    /// At most 99 ASCII characters (SNS's limit for e-mail subjects).
    pub subject: String,
    /// What e-mail and everything else gets.
    pub long: String,
    /// What SMS subscribers get: one short line.
    pub sms: String,
}

#[async_trait]
pub trait SnsPager: Send + Sync {
    /// Publishes the page; SNS's message id.
    async fn publish(&self, page: &SnsPage) -> Result<String, PageError>;
}

/// The Events API v2's `event_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdAction {
    Trigger,
    Acknowledge,
    Resolve,
}

impl PdAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PdAction::Trigger => "trigger",
            PdAction::Acknowledge => "acknowledge",
            PdAction::Resolve => "resolve",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Trigger, Self::Acknowledge, Self::Resolve]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// What a trigger says about the incident (acknowledge and resolve carry
/// the dedup key only).
#[derive(Debug, Clone, PartialEq)]
pub struct PdTrigger {
    pub summary: String,
    /// `critical`, `error`, `warning` or `info`.
    pub severity: &'static str,
    pub details: serde_json::Value,
    /// A link to the incident's thread, when the config can make one.
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PdEvent {
    pub action: PdAction,
    pub dedup_key: String,
    /// Present on triggers.
    pub trigger: Option<PdTrigger>,
}

#[async_trait]
pub trait PagerDutyEvents: Send + Sync {
    async fn send(&self, event: &PdEvent) -> Result<(), PageError>;
}

/// The pagers the engine may use; a missing one fails its pages with a
/// sentence instead of sending them.
#[derive(Clone, Default)]
pub struct Pagers {
    pub sns: Option<Arc<dyn SnsPager>>,
    pub pagerduty: Option<Arc<dyn PagerDutyEvents>>,
}

/// What a verified PagerDuty webhook (v3) says about one of its incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyNotice {
    /// `event.id`, for the logs.
    pub event_id: String,
    pub kind: NoticeKind,
    /// `event.data.incident_key`: the dedup key of the events that opened
    /// the PagerDuty incident.
    pub incident_key: Option<String>,
    /// `event.agent.summary`: who did it (a person's name).
    pub agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    Acknowledged,
    Resolved,
    /// Any other `event_type` (`pagey.ping` when the subscription is made).
    Other(String),
}

impl NoticeKind {
    pub fn parse(event_type: &str) -> Self {
        match event_type {
            "incident.acknowledged" => Self::Acknowledged,
            "incident.resolved" => Self::Resolved,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// What came of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    Acknowledged,
    /// Already acknowledged, resolved, or the resolution already noted.
    Unchanged,
    Noted,
    /// Not about an incident of ours, or not an event the bot acts on.
    Ignored(String),
}

/// An incident's PagerDuty dedup key: one PagerDuty incident per scalebot
/// incident, whichever level triggered it.
pub fn dedup_key(incident_id: &str) -> String {
    format!("scalebot-{incident_id}")
}

/// The scalebot incident a dedup key names, if it is one of ours.
pub fn incident_of(dedup_key: &str) -> Option<&str> {
    dedup_key
        .strip_prefix("scalebot-")
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dedup_key_leads_back_to_its_incident() {
        let key = dedup_key("INC-7F3K2Q");
        assert_eq!(key, "scalebot-INC-7F3K2Q");
        assert_eq!(incident_of(&key), Some("INC-7F3K2Q"));
        assert_eq!(incident_of("d3640fbd41094207a1c11e58e46b1662"), None);
        assert_eq!(incident_of("scalebot-"), None);
    }
}
