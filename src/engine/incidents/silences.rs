//! Silences: `/scale silence <alarm|function|pattern> <duration> <reason>`,
//! `/scale silences`, `/scale unsilence <id>`, and the config's maintenance
//! windows. A silenced alarm is stored, finished as `silenced` and listed in
//! the hourly digest (`digest.rs`), but opens no incident and so escalates
//! and pages nothing. Silences live in the store and end by the clock, so
//! every replica agrees on them and nothing has to expire them.

use chrono::{DateTime, Utc};

use super::IncidentService;
use crate::alarm::Alarm;
use crate::catalog::Invocation;
use crate::chat::{Message, Text, Tone};
use crate::config::{MaintenanceWindow, WindowTime};
use crate::domain::glob::Glob;
use crate::domain::short_id;
use crate::domain::silence::SilenceLength;
use crate::engine::request::{ActionError, CommandRequest, Outcome, Reply};
use crate::store::{SilenceRow, SilencedAlarm};

/// The work queue's outcome for an alarm a silence held back.
pub(super) const SILENCED: &str = "silenced";

/// The names a silence's pattern is tried on: the alarm's own, and the
/// function, database, proxy or cache it is about.
fn names_of<'a>(alarm: &'a Alarm, name: &'a str) -> Vec<&'a str> {
    let mut names = vec![name];
    names.extend(alarm.function_name());
    for dimension in [
        "DBInstanceIdentifier",
        "DBClusterIdentifier",
        "DBProxyName",
        "ReplicationGroupId",
        "CacheClusterId",
    ] {
        names.extend(alarm.dimension(dimension));
    }
    names
}

fn reply(text: Text, tone: Tone) -> Outcome {
    Outcome::Reply(Reply {
        message: Message {
            tone,
            text,
            ..Default::default()
        },
        images: Vec::new(),
    })
}

impl IncidentService {
    /// What silences `alarm` now, if anything: `SIL-…` (a command's
    /// silence) or `window <name>` (the config's).
    pub(super) async fn silenced_by(
        &self,
        alarm: &Alarm,
        name: &str,
    ) -> Result<Option<String>, ActionError> {
        let now = self.now();
        let names = names_of(alarm, name);
        let fits = |pattern: &Glob| names.iter().any(|n| pattern.matches(n));
        for silence in self.store.active_silences(now.timestamp_millis()).await? {
            match Glob::parse(&silence.pattern) {
                Ok(pattern) if fits(&pattern) => return Ok(Some(silence.id)),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(silence = %silence.id, error = %e, "stored silence has no valid pattern")
                }
            }
        }
        let window = self
            .settings
            .silences
            .windows
            .iter()
            .find(|w| fits(&w.pattern) && w.active_until(now, self.tz).is_some());
        Ok(window.map(|w| format!("window {}", w.name)))
    }

    /// Records a held-back notification for the digest.
    pub(super) async fn hold_back(
        &self,
        message_id: &str,
        alarm: &Alarm,
        name: &str,
        by: &str,
    ) -> Result<(), ActionError> {
        tracing::info!(alarm = %name, silenced_by = %by, "alarm silenced");
        let held = SilencedAlarm {
            message_id: message_id.to_owned(),
            alarm_name: name.to_owned(),
            state: alarm
                .new_state_value
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            reason: alarm.new_state_reason.clone().unwrap_or_default(),
            silenced_by: by.to_owned(),
            at_ms: self.now().timestamp_millis(),
        };
        self.store.record_silenced(&held).await?;
        Ok(())
    }

    /// `/scale silence <pattern> <duration> <reason…>`: the caller's
    /// permission is checked before this runs.
    pub(crate) async fn silence(
        &self,
        inv: &Invocation,
        req: &CommandRequest,
    ) -> Result<Outcome, ActionError> {
        let word = |name: &str| {
            inv.args
                .get(name)
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        let pattern = Glob::parse(&word("target")).map_err(|e| ActionError::Refused(e.0))?;
        let length =
            SilenceLength::parse(&word("duration")).map_err(|e| ActionError::Refused(e.0))?;
        let reason = word("reason");
        if reason.trim().is_empty() {
            return Err(ActionError::Refused(
                "a silence needs a reason: `/scale silence <alarm|function|pattern> <duration> <reason>`".into(),
            ));
        }
        let now = self.now();
        let until = now + length.duration();
        let row = SilenceRow {
            id: short_id("SIL"),
            pattern: pattern.as_str().to_owned(),
            reason: reason.clone(),
            created_by: req.user.clone(),
            created_ms: now.timestamp_millis(),
            until_ms: until.timestamp_millis(),
        };
        self.store.insert_silence(&row).await?;
        let text = Text::from("🔕 ")
            .user(&req.user)
            .markup(" silenced ")
            .verbatim(pattern.as_str())
            .markup(format!(
                " for {length}, until {} (`{}`): ",
                crate::format::when(until, now, self.tz),
                row.id
            ))
            .verbatim(reason)
            .markup(format!(
                ". Its alarms are stored and listed in the hourly digest, but open no incident \
                 and page nobody. `/scale unsilence {}` ends it sooner.",
                row.id
            ));
        self.tell_incident_channel(req, &text).await;
        Ok(reply(text, Tone::Neutral))
    }

    /// `/scale unsilence <id>`.
    pub(crate) async fn unsilence(
        &self,
        inv: &Invocation,
        req: &CommandRequest,
    ) -> Result<Outcome, ActionError> {
        let id = inv.word("id").unwrap_or_default().to_uppercase();
        let now = self.now().timestamp_millis();
        if !self.store.end_silence(&id, &req.user, now).await? {
            return Err(ActionError::Refused(format!(
                "there is no silence `{}` in force (`/scale silences` lists them)",
                crate::domain::truncate(&id, 20)
            )));
        }
        let text = Text::from(format!("🔔 Silence `{id}` ended by "))
            .user(&req.user)
            .markup("; its alarms open incidents again.");
        self.tell_incident_channel(req, &text).await;
        Ok(reply(text, Tone::Good))
    }

    /// A silence made or ended elsewhere is said where the on-call people
    /// look too; a failure there does not undo it.
    async fn tell_incident_channel(&self, req: &CommandRequest, text: &Text) {
        let channel = &self.settings.channels.incidents;
        if &req.channel == channel {
            return;
        }
        let message = Message::text(text.clone());
        if let Err(e) = self.chat.post(channel, None, &message).await {
            tracing::warn!(error = %e, "silence not announced in the incident channel");
        }
    }

    /// `/scale silences`: the silences in force and the config's windows.
    pub(crate) async fn silences(&self) -> Result<Outcome, ActionError> {
        let now = self.now();
        let active = self.store.active_silences(now.timestamp_millis()).await?;
        let mut text = Text::new();
        for s in &active {
            let until = DateTime::<Utc>::from_timestamp_millis(s.until_ms).unwrap_or_default();
            text = text
                .markup(format!("• `{}` ", s.id))
                .verbatim(&s.pattern)
                .markup(format!(
                    " until {}, by ",
                    crate::format::when(until, now, self.tz)
                ))
                .user(&s.created_by)
                .markup(": ")
                .verbatim(&s.reason)
                .markup("\n");
        }
        if active.is_empty() {
            text = text.markup("No silences in force.\n");
        }
        for w in &self.settings.silences.windows {
            text = text.append(self.window_line(w, now));
        }
        Ok(Outcome::Reply(Reply {
            message: Message {
                title: Some(format!("Silences in force: {}", active.len())),
                text,
                footer: Some(
                    "`/scale silence <alarm|function|pattern> <duration> <reason>` · `/scale unsilence <id>`"
                        .into(),
                ),
                ..Default::default()
            },
            images: Vec::new(),
        }))
    }

    /// One maintenance window: its schedule, and whether it is on now.
    fn window_line(&self, w: &MaintenanceWindow, now: DateTime<Utc>) -> Text {
        let schedule = match &w.when {
            WindowTime::Once { start, end } => format!(
                "{} to {}",
                crate::format::stamp(*start, self.tz),
                crate::format::stamp(*end, self.tz)
            ),
            WindowTime::Weekly { days, from, until } => {
                let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
                format!(
                    "every {} {}–{}",
                    days.join(", "),
                    from.format("%H:%M"),
                    until.format("%H:%M")
                )
            }
        };
        let on = match w.active_until(now, self.tz) {
            Some(end) => format!(
                " · *in force until {}*",
                crate::format::when(end, now, self.tz)
            ),
            None => String::new(),
        };
        Text::from("• window ")
            .verbatim(&w.name)
            .markup(" (config): ")
            .verbatim(w.pattern.as_str())
            .markup(format!(", {schedule}{on}"))
            .markup(if w.reason.is_empty() { "" } else { ": " })
            .verbatim(&w.reason)
            .markup("\n")
    }
}
