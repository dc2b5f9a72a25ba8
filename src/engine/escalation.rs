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
