//! The digest of silenced alarms: once an hour, into the incident channel,
//! while any were held back. Hourly rather than in the daily report: a
//! silence lasts hours (a deploy, a load test), and an alarm that keeps
//! firing under one may be a real problem the silence hides, which people
//! should see while the silence still runs, not the next morning. One
//! replica posts each hour's (the slot is claimed in the store); a digest
//! that cannot be posted hands its alarms on to the next hour's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::IncidentService;
use crate::chat::{Message, Text, Tone};
use crate::engine::request::ActionError;
use crate::store::SilencedAlarm;

const HOUR_MS: i64 = 3_600_000;

impl IncidentService {
    /// Checks every `every` whether an hour has closed with silenced alarms.
    pub(crate) fn spawn_silence_digest(self: &Arc<Self>, every: Duration) {
        let me = self.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = me.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if let Err(e) = me.post_silence_digest().await {
                    tracing::warn!(error = %e, "silenced-alarm digest failed");
                }
            }
        });
    }

    /// Posts the digest of the alarms held back before the current hour,
    /// if there are any and no other replica has claimed it.
    pub(crate) async fn post_silence_digest(&self) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        let slot = now - now.rem_euclid(HOUR_MS);
        let Some(held) = self.store.claim_silence_digest(slot, now).await? else {
            return Ok(());
        };
        if held.is_empty() {
            return Ok(());
        }
        let message = self.digest_message(&held, slot);
        let channel = &self.settings.channels.incidents;
        match self.chat.post(channel, None, &message).await {
            Ok(_) => self.store.silence_digest_posted(slot, now).await?,
            Err(e) => {
                tracing::warn!(error = %e, "silenced-alarm digest not posted; next hour's takes it");
                self.store.silence_digest_failed(slot).await?;
            }
        }
        Ok(())
    }

    fn digest_message(&self, held: &[SilencedAlarm], slot_ms: i64) -> Message {
        // Per alarm and silence: how many, the latest state and when.
        let mut groups: BTreeMap<(&str, &str), (usize, &SilencedAlarm)> = BTreeMap::new();
        for h in held {
            let entry = groups
                .entry((h.alarm_name.as_str(), h.silenced_by.as_str()))
                .or_insert((0, h));
            entry.0 += 1;
            entry.1 = h;
        }
        let at = |ms: i64| {
            let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
            crate::format::when(t, self.now(), self.tz)
        };
        let mut text = Text::new();
        for ((alarm, by), (count, last)) in &groups {
            let times = if *count == 1 {
                String::new()
            } else {
                format!(" ×{count}")
            };
            text = text
                .markup("• `")
                .verbatim(*alarm)
                .markup(format!(
                    "`{times}, last {} at {} — {}",
                    last.state,
                    at(last.at_ms),
                    by
                ))
                .markup("\n");
        }
        Message {
            title: Some(format!(
                "🔕 Silenced alarms before {}: {} notification(s) of {} alarm(s)",
                at(slot_ms),
                held.len(),
                groups.len()
            )),
            tone: Tone::Neutral,
            text,
            footer: Some(
                "Stored, but no incident opened and nobody paged. `/scale silences` lists what is silenced."
                    .into(),
            ),
            ..Default::default()
        }
    }
}
