//! Escalation (the runbook's L1 → L4): every unresolved incident carries the
//! time it moves up a level, in the store. A sweep claims due incidents with
//! a conditional update, mentions the next level's people in the thread and
//! sets the next deadline; at L4 it also posts to the incident channel
//! itself. A restarted bot resumes from the stored deadlines and, thanks to
//! the claim, posts nothing twice.

use std::sync::Arc;

use super::{ActionError, Engine};
use crate::chat::{Message, Tone};
use crate::store::IncidentRow;

/// How Slack writes a mention of a user or a user group.
fn mention(id: &str) -> String {
    if id.starts_with('S') {
        format!("<!subteam^{id}>")
    } else {
        crate::chat::mention(id)
    }
}

impl Engine {
    /// When an incident at `level` (1-based) should move up, if ever.
    pub(super) fn escalation_deadline(&self, level: i64, from_ms: i64) -> Option<i64> {
        let idx = usize::try_from(level - 1).ok()?;
        let after = self
            .settings
            .escalation
            .levels
            .get(idx)?
            .escalate_after_seconds?;
        Some(from_ms + (after as i64) * 1000)
    }

    pub(super) async fn escalate_due(self: &Arc<Self>) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        for incident in self.store.due_escalations(now).await? {
            let next_level = incident.level + 1;
            let next_deadline = self.escalation_deadline(next_level, now);
            if !self
                .store
                .claim_escalation(&incident.id, incident.level, next_deadline, now)
                .await?
            {
                continue;
            }
            self.announce_escalation(&incident, next_level).await?;
        }
        Ok(())
    }

    /// `/scale incident <id> escalate`: moves up one level now.
    pub(super) async fn escalate_now(&self, incident: &IncidentRow) -> Result<bool, ActionError> {
        if incident.level >= 4 {
            return Ok(false);
        }
        let now = self.now().timestamp_millis();
        let next = incident.level + 1;
        if !self
            .store
            .claim_escalation(
                &incident.id,
                incident.level,
                self.escalation_deadline(next, now),
                now,
            )
            .await?
        {
            return Ok(false);
        }
        self.announce_escalation(incident, next).await?;
        Ok(true)
    }

    /// A channel of the incident's own (`inc-<id>`) for the responders of
    /// this level; the incident thread keeps the summary and a link.
    async fn open_dedicated_channel(
        &self,
        incident: &IncidentRow,
        mention: &[String],
        level_name: &str,
    ) -> Result<(), ActionError> {
        let mut users: Vec<String> = Vec::new();
        for m in mention {
            if m.starts_with('S') {
                match self.chat.group_members(m).await {
                    Ok(members) => users.extend(members),
                    Err(e) => tracing::warn!(group = %m, error = %e, "group members not read"),
                }
            } else {
                users.push(m.clone());
            }
        }
        users.sort();
        users.dedup();
        let name = format!("inc-{}", incident.id.to_lowercase());
        let channel = self.chat.create_channel(&name, &users).await?;
        self.chat
            .post(
                &channel,
                None,
                &Message {
                    title: Some(format!("{} · {}", incident.id, incident.title)),
                    tone: Tone::Warning,
                    text: format!(
                        "Opened for the {level_name}. The incident's timeline stays in the thread in <#{}>; \
                         `/scale incident {} status|note|resolve|timeline` work from here.",
                        incident.channel, incident.id
                    ),
                    ..Default::default()
                },
            )
            .await?;
        self.thread(
            incident,
            "scalebot",
            "channel",
            &Message::text(format!(
                "💬 Dedicated channel <#{channel}> opened for the {level_name}."
            )),
        )
        .await?;
        Ok(())
    }

    async fn announce_escalation(
        &self,
        incident: &IncidentRow,
        level: i64,
    ) -> Result<(), ActionError> {
        let Some(settings) = usize::try_from(level - 1)
            .ok()
            .and_then(|i| self.settings.escalation.levels.get(i))
        else {
            return Ok(());
        };
        let who: Vec<String> = settings.mention.iter().map(|m| mention(m)).collect();
        let minutes = (self.now().timestamp_millis() - incident.opened_ms) / 60_000;
        let text = format!(
            "⬆️ Escalated to {} after {minutes} min unresolved.{}",
            settings.name,
            if who.is_empty() {
                String::new()
            } else {
                format!(" {}", who.join(" "))
            }
        );
        let message = Message {
            tone: if level >= 4 { Tone::Bad } else { Tone::Warning },
            text: text.clone(),
            ..Default::default()
        };
        self.thread(incident, "scalebot", "escalated", &message)
            .await?;
        if self.settings.escalation.dedicated_channel_at == Some(level) {
            self.open_dedicated_channel(incident, &settings.mention, &settings.name)
                .await?;
        }
        if level >= 4 {
            // Service-wide impact: the whole channel sees it, not only the thread.
            self.chat
                .post(
                    &incident.channel,
                    None,
                    &Message {
                        title: Some(format!(
                            "{} · {} · {}",
                            incident.id, settings.name, incident.title
                        )),
                        tone: Tone::Bad,
                        text: format!("{text} Executive notification required (runbook L4)."),
                        ..Default::default()
                    },
                )
                .await?;
        }
        Ok(())
    }
}
