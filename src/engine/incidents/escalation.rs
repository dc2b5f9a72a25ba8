//! Escalation (the runbook's L1 → L4): every unresolved incident carries the
//! time it moves up a level, in the store. A sweep claims due incidents with
//! a conditional update, mentions the next level's people in the thread and
//! sets the next deadline; at L4 the reply is also broadcast to the channel.
//! Until someone acknowledges, the level's people are reminded on their own
//! stored schedule. Reaching a level also owes its pages (SNS topics,
//! PagerDuty), stored in the same transaction and sent by `paging.rs`. A
//! restarted bot resumes from the stored deadlines and, thanks to the
//! claims, posts nothing twice.

use std::sync::Arc;

use super::IncidentService;
use crate::chat::{Message, Text, Tone};
use crate::engine::request::ActionError;
use crate::store::{IncidentRow, LevelUp};

/// The people a level names, as mentions: a Slack user group (`S…`) or a
/// Discord role (written `&<id>` in the config) is a group, anything else
/// a user; each adapter writes them in its own syntax.
fn mentions(ids: &[String]) -> Text {
    let mut text = Text::new();
    for id in ids {
        text = text.markup(" ");
        text = if id.starts_with('S') || id.starts_with('&') {
            text.group(id.clone())
        } else {
            text.user(id.clone())
        };
    }
    text
}

impl IncidentService {
    /// Escalation, reminders, auto-resolve, coalesced repeats, watches
    /// after a change and pages, each swept every `every` in
    /// a task of its own until shutdown, so that a slow chat call in one
    /// does not hold up the others. Several replicas may run them; the
    /// store's conditional updates let one announce each step.
    pub(crate) fn spawn_sweeps(self: &Arc<Self>, every: std::time::Duration) {
        let sweeps: [(&'static str, Sweep); 6] = [
            ("escalation", |s| {
                Box::pin(async move { s.escalate_due().await })
            }),
            ("reminder", |s| {
                Box::pin(async move { s.remind_due().await })
            }),
            ("auto-resolve", |s| {
                Box::pin(async move { s.auto_resolve_due().await })
            }),
            ("repeats", |s| {
                Box::pin(async move { s.post_due_repeats().await })
            }),
            ("watches", |s| {
                Box::pin(async move { s.check_due_watches().await })
            }),
            ("pages", |s| {
                Box::pin(async move { s.send_due_pages().await })
            }),
        ];
        for (name, sweep) in sweeps {
            let me = self.clone();
            let stop = self.shutdown.clone();
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    if let Err(e) = sweep(me.clone()).await {
                        tracing::warn!(sweep = name, error = %e, "sweep failed");
                    }
                }
            });
        }
    }
}

/// How long a claim on an announcement lasts without renewal: the replica
/// posting it renews it (`engine::renew`), so another takes it over within
/// this after the first dies.
const ANNOUNCE_LEASE_MS: i64 = 8_000;
/// After a failed announcement, when it is tried again.
const ANNOUNCE_RETRY_MS: i64 = 2_000;

type Sweep =
    fn(
        Arc<IncidentService>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ActionError>> + Send>>;

impl IncidentService {
    /// When an incident at `level` (1-based) should move up, if ever.
    pub(crate) fn escalation_deadline(&self, level: i64, from_ms: i64) -> Option<i64> {
        let idx = usize::try_from(level - 1).ok()?;
        let after = self
            .settings
            .escalation
            .levels
            .get(idx)?
            .escalate_after_seconds?;
        Some(from_ms + (after as i64) * 1000)
    }

    /// When the people of `level` are next reminded of an unacknowledged
    /// incident, if ever.
    pub(crate) fn reminder_deadline(&self, level: i64, from_ms: i64) -> Option<i64> {
        let idx = usize::try_from(level - 1).ok()?;
        let every = self
            .settings
            .escalation
            .levels
            .get(idx)?
            .remind_every_seconds?;
        Some(from_ms + (every as i64) * 1000)
    }

    /// The move of `incident` up one level: its deadlines there and the
    /// pages that level owes, stored together.
    fn level_up<'a>(&self, incident: &IncidentRow, by: Option<&'a str>, now: i64) -> LevelUp<'a> {
        let next = incident.level + 1;
        LevelUp {
            from_level: incident.level,
            by,
            next_ms: self.escalation_deadline(next, now),
            remind_ms: self.reminder_deadline(next, now),
            now_ms: now,
            pages: self.pages_for(next),
        }
    }

    pub(crate) async fn escalate_due(self: &Arc<Self>) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        for incident in self.store.due_escalations(now).await? {
            self.store
                .claim_escalation(&incident.id, &self.level_up(&incident, None, now))
                .await?;
        }
        self.announce_owed().await
    }

    /// `/scale incident <id> escalate`: moves up one level now.
    pub(crate) async fn escalate_now(
        &self,
        incident: &IncidentRow,
        by: &str,
    ) -> Result<bool, ActionError> {
        if incident.level >= 4 {
            return Ok(false);
        }
        let now = self.now().timestamp_millis();
        if !self
            .store
            .claim_escalation(&incident.id, &self.level_up(incident, Some(by), now))
            .await?
        {
            return Ok(false);
        }
        self.announce_owed().await?;
        Ok(true)
    }

    /// Posts every escalation that moved a level but is not yet announced
    /// (the post failed, or the replica died before it): at least once,
    /// each under a lease so that two replicas do not both post it.
    pub(crate) async fn announce_owed(&self) -> Result<(), ActionError> {
        let now = crate::store::now_ms();
        for (incident, level, by) in self.store.owed_announcements(now).await? {
            let until = now + ANNOUNCE_LEASE_MS;
            if !self
                .store
                .claim_announcement(&incident.id, level, now, until)
                .await?
            {
                continue;
            }
            let id = incident.id.clone();
            let posted = crate::store::renew::renewing(
                self.announce_escalation(&incident, level, by.as_deref()),
                || {
                    let until = crate::store::now_ms() + ANNOUNCE_LEASE_MS;
                    self.store.release_announcement(&id, until)
                },
            )
            .await;
            match posted {
                Ok(()) => {
                    self.store.announced(&incident.id, level).await?;
                }
                Err(e) => {
                    tracing::warn!(incident = %incident.id, level, error = %e, "escalation not announced; retried");
                    let retry = crate::store::now_ms() + ANNOUNCE_RETRY_MS;
                    self.store.release_announcement(&incident.id, retry).await?;
                }
            }
        }
        Ok(())
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
        // `INC-3F9A2C` → `inc-3f9a2c`.
        let name = incident.id.to_lowercase();
        let channel = self.chat.create_channel(&name, &users).await?;
        self.store
            .set_incident_channel(&incident.id, &channel)
            .await?;
        self.chat
            .post(
                &channel,
                None,
                &Message {
                    title: Some(format!("{} · {}", incident.id, incident.title)),
                    tone: Tone::Warning,
                    text: Text::from(format!(
                        "Opened for the {level_name}. The incident's timeline stays in the thread in "
                    ))
                    .channel(incident.channel.clone())
                    .markup(format!(
                        "; here `/scale incident ack|escalate|resolve|status|timeline` need no id \
                         (`/scale incident {} note <text>` does).",
                        incident.id
                    )),
                    ..Default::default()
                },
            )
            .await?;
        self.thread(
            incident,
            "scalebot",
            "channel",
            &Message::text(
                Text::from("💬 Dedicated channel ")
                    .channel(channel.clone())
                    .markup(format!(" opened for the {level_name}.")),
            ),
        )
        .await?;
        Ok(())
    }

    async fn announce_escalation(
        &self,
        incident: &IncidentRow,
        level: i64,
        by: Option<&str>,
    ) -> Result<(), ActionError> {
        let Some(settings) = usize::try_from(level - 1)
            .ok()
            .and_then(|i| self.settings.escalation.levels.get(i))
        else {
            return Ok(());
        };
        let minutes = (self.now().timestamp_millis() - incident.opened_ms) / 60_000;
        let mut text = Text::from(format!("⬆️ Escalated to {} ", settings.name));
        text = match by {
            Some(user) => text.markup("by ").user(user),
            None => text.markup(format!("after {minutes} min unresolved")),
        };
        text = text.markup(".").append(mentions(&settings.mention));
        if level >= 4 {
            text = text.markup(" Executive notification required (runbook L4).");
        }
        let message = Message {
            tone: if level >= 4 { Tone::Bad } else { Tone::Warning },
            text,
            // Service-wide impact: the whole channel sees the L4 reply.
            broadcast: level >= 4,
            ..Default::default()
        };
        self.thread(incident, by.unwrap_or("scalebot"), "escalated", &message)
            .await?;
        self.request_redraw(&incident.id);
        if self.settings.escalation.dedicated_channel_at == Some(level) {
            self.open_dedicated_channel(incident, &settings.mention, &settings.name)
                .await?;
        }
        Ok(())
    }
}

impl IncidentService {
    /// Reminds the current level's people of open, unacknowledged incidents.
    pub(crate) async fn remind_due(&self) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        for (incident, due) in self.store.due_reminders(now).await? {
            let next = self.reminder_deadline(incident.level, now);
            if !self.store.claim_reminder(&incident.id, due, next).await? {
                continue;
            }
            let Some(level) = usize::try_from(incident.level - 1)
                .ok()
                .and_then(|i| self.settings.escalation.levels.get(i))
            else {
                continue;
            };
            let minutes = (now - incident.opened_ms) / 60_000;
            let posted = self
                .thread(
                    &incident,
                    "scalebot",
                    "reminder",
                    &Message {
                        tone: Tone::Warning,
                        text: Text::from(format!(
                            "⏰ Still unacknowledged after {minutes} min at {}.",
                            level.name
                        ))
                        .append(mentions(&level.mention))
                        .markup(" Press Acknowledge to stop these reminders."),
                        ..Default::default()
                    },
                )
                .await;
            if let (Err(e), Some(next)) = (&posted, next) {
                // Owed again in two seconds, unless someone acted meanwhile.
                tracing::warn!(incident = %incident.id, error = %e, "reminder not posted; retried");
                self.store
                    .claim_reminder(&incident.id, next, Some(now + 2_000))
                    .await?;
            }
        }
        Ok(())
    }
}
