//! Pages to SNS topics (`sns:Publish`) through the official SDK. One
//! Publish carries a message per kind of subscriber (`MessageStructure =
//! json`): a short line for SMS, the whole page for e-mail and the rest.
//! SNS delivers at least once, and so does this: a replica that dies
//! between Publish and recording it leaves the page to be sent again.

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{AwsSettings, Settings};
use crate::metrics::Metrics;
use crate::pager::{PageError, SnsPage, SnsPager};

pub struct SnsPublisher {
    sns: aws_sdk_sns::Client,
    region: String,
    metrics: Arc<Metrics>,
}

impl SnsPublisher {
    pub async fn new(settings: &AwsSettings, metrics: Arc<Metrics>) -> Self {
        let shared = super::sdk_config(settings).await;
        Self {
            sns: super::Clients::new(&shared).sns,
            region: settings.region.clone(),
            metrics,
        }
    }
}

/// The publisher, when a level lists SNS topics to page.
pub async fn for_levels(settings: &Settings, metrics: &Arc<Metrics>) -> Option<Arc<dyn SnsPager>> {
    let levels = &settings.escalation.levels;
    if levels.iter().all(|l| l.sns_topics.is_empty()) {
        return None;
    }
    Some(Arc::new(
        SnsPublisher::new(&settings.aws, metrics.clone()).await,
    ))
}

/// The `Message` of a json-structured Publish: `default` for every
/// protocol without a key of its own.
pub(crate) fn structured(page: &SnsPage) -> String {
    serde_json::json!({
        "default": page.long,
        "email": page.long,
        "sms": page.sms,
    })
    .to_string()
}

#[async_trait]
impl SnsPager for SnsPublisher {
    async fn publish(&self, page: &SnsPage) -> Result<String, PageError> {
        let sent = self
            .sns
            .publish()
            .topic_arn(&page.topic)
            .subject(&page.subject)
            .message_structure("json")
            .message(structured(page))
            .send()
            .await;
        let result = match sent {
            Ok(out) => Ok(out.message_id().unwrap_or_default().to_owned()),
            Err(e) => Err(super::classify(
                "sns:Publish",
                &self.region,
                || format!("SNS topic {}", page.topic),
                e,
            )),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        self.metrics.aws_call("sns:Publish", outcome);
        // Every AWS failure is worth another try: a throttle passes, and a
        // missing topic or permission may be fixed while the page waits.
        result.map_err(|e| PageError::Retry(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_subscriber_gets_its_own_text() {
        let page = SnsPage {
            topic: "arn:aws:sns:eu-central-1:123456789012:oncall".into(),
            subject: "INC-1 L3".into(),
            long: "the whole page".into(),
            sms: "short".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&structured(&page)).expect("JSON");
        assert_eq!(v["default"], "the whole page");
        assert_eq!(v["email"], "the whole page");
        assert_eq!(v["sms"], "short");
    }
}
