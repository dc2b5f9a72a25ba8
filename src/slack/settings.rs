//! `[slack]`: where the Web API is, and how the bot paces and retries
//! its posts.

use std::time::Duration;

use serde::Deserialize;

use crate::config::values;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// The Web API base URL; any URL, plain http:// included, so a local
    /// Slack-compatible server can stand in.
    #[serde(deserialize_with = "values::url")]
    pub api_url: url::Url,
    /// How many times a post is retried after Slack answers 429.
    pub max_rate_limit_retries: u32,
    /// The longest `Retry-After` the bot honours before giving up on a post.
    #[serde(
        rename = "max_retry_after_seconds",
        deserialize_with = "values::seconds"
    )]
    pub max_retry_after: Duration,
    /// Posts to one channel are paced to one per this interval (Slack's
    /// guidance: about one per second), after a burst of `post_burst`;
    /// zero turns pacing off.
    #[serde(rename = "post_interval_ms", deserialize_with = "values::millis")]
    pub post_interval: Duration,
    pub post_burst: u32,
}
