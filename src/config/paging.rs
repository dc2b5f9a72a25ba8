//! `[paging]` and `[pagerduty]`: how the people of an escalation level are
//! woken outside chat (a level's own `sns_topics` and `pagerduty` keys say
//! whom), and how hard a page is tried before it is recorded as failed.

use serde::{Deserialize, Deserializer};

use super::values;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagingSettings {
    /// Attempts per page (AWS errors, PagerDuty 429s and 5xx) before it is
    /// recorded as failed on the incident's timeline.
    #[serde(deserialize_with = "values::at_least_one")]
    pub max_attempts: u32,
    /// The wait after the first failed attempt; each next wait doubles, up
    /// to five minutes.
    #[serde(deserialize_with = "values::at_least_one")]
    pub retry_after_ms: u64,
    /// A link to an incident's thread, with `{channel}` and `{message}`
    /// (the root message's id without its dot: Slack's permalink form
    /// `https://<workspace>.slack.com/archives/{channel}/p{message}`).
    /// Without it a page names the channel instead.
    #[serde(default)]
    pub thread_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySettings {
    /// The Events API v2 endpoint (another URL only for tests or a proxy).
    #[serde(deserialize_with = "values::url")]
    pub events_url: url::Url,
    /// `payload.source` of the events: where the trouble is.
    pub source: String,
}

/// SNS topic ARNs (`arn:<partition>:sns:<region>:<account>:<name>`).
pub fn sns_topics<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let topics = Vec::<String>::deserialize(d)?;
    for t in &topics {
        let parts: Vec<&str> = t.split(':').collect();
        let named = parts.len() == 6 && parts.iter().all(|p| !p.is_empty());
        if !named || parts[0] != "arn" || parts[2] != "sns" {
            return Err(serde::de::Error::custom(format!(
                "{t:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
            )));
        }
    }
    Ok(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Level {
        #[serde(deserialize_with = "sns_topics")]
        sns_topics: Vec<String>,
    }

    #[test]
    fn a_topic_must_be_an_sns_arn() {
        let parse = |v: &str| {
            let text = format!("sns_topics = [\"{v}\"]\n");
            super::super::parse::<Level>(std::path::Path::new("x.toml"), &text)
                .map(|l| l.sns_topics)
        };
        let arn = "arn:aws:sns:eu-central-1:123456789012:oncall-l3";
        assert_eq!(parse(arn).ok(), Some(vec![arn.to_owned()]));
        let err = parse("arn:aws:sqs:eu-central-1:123456789012:q").expect_err("not SNS");
        assert!(err.to_string().contains("is not an SNS topic ARN"), "{err}");
        assert!(parse("oncall-l3").is_err());
        assert!(parse("arn:aws:sns:eu-central-1::oncall").is_err());
    }
}
