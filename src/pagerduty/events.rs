//! PagerDuty's Events API v2 (`POST /v2/enqueue`): trigger, acknowledge
//! and resolve, all with the incident's dedup key, so a repeat (a retry,
//! a replica that died before recording a send) changes nothing there.
//! 202 is success; 400 is an event PagerDuty will never take; 429 and 5xx
//! (and no answer) are tried again later by the page's owner.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::config::{PagerDutySettings, Secret, Secrets, Settings};
use crate::pager::{PageError, PagerDutyEvents, PdAction, PdEvent};

pub struct PagerDutyClient {
    http: reqwest::Client,
    events_url: url::Url,
    routing_key: Secret,
    source: String,
}

impl PagerDutyClient {
    pub fn new(settings: &PagerDutySettings, routing_key: Secret) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            events_url: settings.events_url.clone(),
            routing_key,
            source: settings.source.clone(),
        })
    }

    /// The request body, as the Events API v2 reference lists its fields.
    pub(crate) fn body(&self, event: &PdEvent) -> Value {
        let mut body = json!({
            "routing_key": self.routing_key.expose(),
            "event_action": event.action.as_str(),
            "dedup_key": event.dedup_key,
        });
        if let (PdAction::Trigger, Some(t)) = (event.action, &event.trigger) {
            body["payload"] = json!({
                "summary": clip(&t.summary, 1024),
                "source": self.source,
                "severity": t.severity,
                "component": "scalebot",
                "custom_details": t.details,
            });
            body["client"] = json!("scalebot");
            if let Some(link) = &t.link {
                body["client_url"] = json!(link);
                body["links"] = json!([{ "href": link, "text": "Incident thread" }]);
            }
        }
        body
    }
}

/// The client, when a level pages PagerDuty. Without the routing key
/// there is none: a warning now, and those pages are recorded as failed
/// in each incident's thread.
pub fn for_levels(
    settings: &Settings,
    secrets: &Secrets,
) -> Result<Option<Arc<dyn PagerDutyEvents>>, reqwest::Error> {
    if !settings.escalation.levels.iter().any(|l| l.pagerduty) {
        return Ok(None);
    }
    let Some(key) = &secrets.pagerduty.routing_key else {
        tracing::warn!(
            "a level pages PagerDuty but PAGERDUTY_ROUTING_KEY is not set: those pages will fail"
        );
        return Ok(None);
    };
    let client = PagerDutyClient::new(&settings.pagerduty, key.clone())?;
    Ok(Some(Arc::new(client)))
}

/// At most `max` characters (PagerDuty refuses a longer summary).
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[async_trait]
impl PagerDutyEvents for PagerDutyClient {
    async fn send(&self, event: &PdEvent) -> Result<(), PageError> {
        let answer = self
            .http
            .post(self.events_url.clone())
            .json(&self.body(event))
            .send()
            .await
            .map_err(|e| PageError::Retry(format!("PagerDuty did not answer: {e}")))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        // The answer's `message` and `errors` say what was wrong; never the key.
        let text = answer.text().await.unwrap_or_default();
        let why: String = text.chars().take(300).collect();
        let sentence = format!("PagerDuty answered {status}: {why}");
        if status.as_u16() == 429 || status.is_server_error() {
            Err(PageError::Retry(sentence))
        } else {
            Err(PageError::Refused(sentence))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pager::PdTrigger;

    fn client() -> PagerDutyClient {
        let settings = PagerDutySettings {
            events_url: "https://events.pagerduty.com/v2/enqueue"
                .parse()
                .expect("URL"),
            source: "scalebot".into(),
        };
        PagerDutyClient::new(&settings, Secret::new("R0UT1NGKEY")).expect("client")
    }

    #[test]
    fn a_trigger_carries_the_payload_and_acknowledge_only_the_key() {
        let c = client();
        let trigger = PdEvent {
            action: PdAction::Trigger,
            dedup_key: "scalebot-INC-1".into(),
            trigger: Some(PdTrigger {
                summary: "x".repeat(2000),
                severity: "critical",
                details: json!({"level": "L4"}),
                link: Some("https://example.slack.com/archives/C1/p1".into()),
            }),
        };
        let body = c.body(&trigger);
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["routing_key"], "R0UT1NGKEY");
        assert_eq!(body["payload"]["severity"], "critical");
        assert_eq!(body["payload"]["source"], "scalebot");
        assert_eq!(
            body["payload"]["summary"].as_str().map(str::len),
            Some(1024)
        );
        assert_eq!(
            body["links"][0]["href"],
            "https://example.slack.com/archives/C1/p1"
        );
        let ack = c.body(&PdEvent {
            action: PdAction::Acknowledge,
            dedup_key: "scalebot-INC-1".into(),
            trigger: None,
        });
        assert_eq!(ack["event_action"], "acknowledge");
        assert_eq!(ack["dedup_key"], "scalebot-INC-1");
        assert!(ack.get("payload").is_none());
    }
}
