//! CloudWatch alarms (from SNS) become incidents: an ALARM opens one, or
//! joins the open incident of the same alarm; the root message in the
//! incident channel shows what fired, with the runbook commands that fit the
//! metric; level 1 (automated response) runs the read-only diagnostics at
//! once into the thread. OK marks it recovered; INSUFFICIENT_DATA is shown.
//! The config's severity rules give a new incident its severity and the
//! level it starts at; a silenced alarm is held back (`silences.rs`).

use std::sync::Arc;

use super::IncidentService;
use super::NewIncident;
use super::alarm_message::commands_for;
use super::silences::SILENCED;
use super::top_message::RootContext;
use crate::alarm::{Alarm, AlarmState};
use crate::catalog::Parsed;
use crate::chat::{Message, MessageRef, Text, Tone};
use crate::config::{AlarmFacts, JoinBy};
use crate::domain::state::IncidentState;
use crate::engine::commands::actions::{self, Action, ActionContext};
use crate::engine::inbox::APPLIED;
use crate::engine::request::{ActionError, Outcome};
use crate::store::{IncidentRow, RepeatNote, RepeatWindow};

/// The resource an alarm is about, for `join_by = "resource"`.
fn resource_of(alarm: &Alarm) -> Option<String> {
    if let Some(f) = alarm.function_name() {
        return Some(format!("lambda:{f}"));
    }
    for (dimension, kind) in [
        ("DBInstanceIdentifier", "rds"),
        ("DBClusterIdentifier", "rds"),
        ("DBProxyName", "rds-proxy"),
        ("ReplicationGroupId", "elasticache"),
        ("CacheClusterId", "elasticache"),
    ] {
        if let Some(v) = alarm.dimension(dimension) {
            return Some(format!("{kind}:{v}"));
        }
    }
    None
}

/// The reply for a window of repeated ALARMs (`store::repeats`).
pub(super) fn repeats_summary(w: &RepeatWindow, window: u64) -> String {
    let names: Vec<String> = w.alarms.iter().map(|a| format!("`{a}`")).collect();
    if w.count == 1 {
        format!(
            "🚨 {} is in ALARM again: {}",
            names.join(", "),
            w.last_reason
        )
    } else {
        format!(
            "🚨 {} fired {} more times within {window} s. Latest: {}",
            names.join(", "),
            w.count,
            w.last_reason
        )
    }
}

/// What taking an alarm in did: its outcome for the work queue, and a
/// repeat to count with the message's finish.
pub(super) type Taken = (&'static str, Option<RepeatNote>);

impl IncidentService {
    /// What makes two alarm notifications the same incident.
    pub(super) fn dedup_key(&self, alarm: &Alarm, name: &str) -> String {
        match (self.settings.escalation.join_by, resource_of(alarm)) {
            (JoinBy::Resource, Some(resource)) => format!("resource:{resource}"),
            _ => format!("alarm:{name}"),
        }
    }

    /// Handles one alarm state change from SNS; its outcome for the work
    /// queue (`alarm`, or `superseded` for an ALARM that would have opened
    /// an incident after its alarm had already changed again).
    pub async fn on_alarm(
        self: &Arc<Self>,
        message_id: &str,
        alarm: Alarm,
        superseded: bool,
    ) -> Result<Taken, ActionError> {
        let name = alarm
            .alarm_name
            .clone()
            .unwrap_or_else(|| "unnamed alarm".into());
        let key = self.dedup_key(&alarm, &name);
        let lock = self.alarm_locks.entry(key.clone()).or_default().clone();
        let _in_order = lock.lock().await;
        let existing = self.store.open_incident_by_key(&key).await?;
        let now = self.now().timestamp_millis();
        if superseded && existing.is_none() && alarm.state() == Some(AlarmState::Alarm) {
            return Ok((
                "superseded: a newer state change of this alarm is stored",
                None,
            ));
        }
        if let (Some(state), Some(incident)) = (alarm.state(), &existing) {
            self.note_alarm_state(&incident.id, &name, state.as_str(), now)
                .await?;
        }
        // A silenced alarm opens, re-fires and announces nothing; only the
        // recovery of an incident opened before the silence goes through.
        let recovers = existing.is_some() && alarm.state() != Some(AlarmState::Alarm);
        if !recovers && let Some(by) = self.silenced_by(&alarm, &name).await? {
            self.hold_back(message_id, &alarm, &name, &by).await?;
            return Ok((SILENCED, None));
        }
        let repeat = self.apply_state(&alarm, &key, &name, existing, now).await?;
        Ok((APPLIED, repeat))
    }

    /// What an alarm's state change does to its incident, if it has one.
    async fn apply_state(
        self: &Arc<Self>,
        alarm: &Alarm,
        key: &str,
        name: &str,
        existing: Option<IncidentRow>,
        now: i64,
    ) -> Result<Option<RepeatNote>, ActionError> {
        let reason = alarm.new_state_reason.clone().unwrap_or_default();
        let said = |kind: &'static str, text: String| (kind, Message::text(text));
        let (incident, (kind, message)) = match (alarm.state(), existing) {
            (Some(AlarmState::Alarm), Some(incident))
                if incident.state == IncidentState::Recovered =>
            {
                self.fired_again(&incident, name, &reason, now).await?;
                return Ok(None);
            }
            (Some(AlarmState::Alarm), Some(incident)) => {
                return self.repeat(&incident, name, &reason).await;
            }
            (Some(AlarmState::Alarm), None) => {
                return self.open_for_alarm(alarm, key, name, &reason, now).await;
            }
            (Some(AlarmState::Ok), Some(incident)) => {
                self.alarm_ok(&incident, alarm, name, &reason, now).await?;
                return Ok(None);
            }
            (state, None) => {
                // Not an incident, but shown rather than dropped.
                let label = state.map(|s| s.as_str()).unwrap_or("an unknown state");
                let text = format!("ℹ️ CloudWatch alarm `{name}` is {label}: {reason}");
                let channel = &self.settings.channels.incidents;
                self.chat.post(channel, None, &Message::text(text)).await?;
                return Ok(None);
            }
            (Some(AlarmState::InsufficientData), Some(incident)) => (
                incident,
                said(
                    "insufficient_data",
                    format!(
                        "⚪ `{name}` has INSUFFICIENT_DATA: {reason} Check that the metric is still published."
                    ),
                ),
            ),
            (None, Some(incident)) => (
                incident,
                said(
                    "unknown_state",
                    format!("`{name}` reported a state CloudWatch does not define: {reason}"),
                ),
            ),
        };
        self.thread(&incident, "cloudwatch", kind, &message).await?;
        Ok(None)
    }

    /// A recovered incident whose alarm fires again: no longer recovered,
    /// and not resolving itself.
    async fn fired_again(
        &self,
        incident: &IncidentRow,
        name: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), ActionError> {
        self.store
            .set_auto_resolve(&incident.id, IncidentState::Open, None, now)
            .await?;
        let text = format!("🚨 `{name}` is in ALARM again: {reason}");
        self.thread(incident, "cloudwatch", "alarm", &Message::text(text))
            .await?;
        self.request_redraw(&incident.id);
        Ok(())
    }

    /// A new incident for a firing alarm: its root, chart and L1
    /// diagnostics. If another replica opened it first, this joins it.
    async fn open_for_alarm(
        self: &Arc<Self>,
        alarm: &Alarm,
        key: &str,
        name: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<RepeatNote>, ActionError> {
        let trigger = alarm.trigger.as_ref();
        let (severity, level) = self.settings.severities.classify(&AlarmFacts {
            name,
            namespace: trigger.and_then(|t| t.namespace.as_deref()),
            metric: trigger.and_then(|t| t.metric_name.as_deref()),
        });
        let new = NewIncident {
            title: format!("ALARM: {name}"),
            level: level.get(),
            severity: Some(severity),
            source: "alarm",
            dedup_key: Some(key.to_owned()),
            reason: reason.to_owned(),
            context: RootContext::Alarm(Box::new(alarm.clone())),
            acknowledged_by: None,
        };
        let Some(incident) = self.open_incident(new, "cloudwatch").await? else {
            // Another replica opened it first (the store allows one
            // unresolved incident per key): join that one.
            let Some(theirs) = self.store.open_incident_by_key(key).await? else {
                return Err(ActionError::Refused(format!(
                    "the incident for `{name}` was opened and resolved meanwhile; retried"
                )));
            };
            self.note_alarm_state(&theirs.id, name, "ALARM", now)
                .await?;
            return self.repeat(&theirs, name, reason).await;
        };
        self.note_alarm_state(&incident.id, name, "ALARM", now)
            .await?;
        // Its root, chart and L1 diagnostics follow at the chat's pace.
        self.openings.notify_one();
        Ok(None)
    }

    /// An alarm back to OK: the incident recovers once every alarm joined
    /// to it is OK, and then resolves itself after the quiet period.
    async fn alarm_ok(
        &self,
        incident: &IncidentRow,
        alarm: &Alarm,
        name: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), ActionError> {
        let still = self.store.firing_alarms(&incident.id).await?;
        if !still.is_empty() {
            let firing: Vec<String> = still.iter().map(|a| format!("`{a}`")).collect();
            let text = format!(
                "✅ `{name}` is OK again; still in ALARM: {}.",
                firing.join(", ")
            );
            self.thread(incident, "cloudwatch", "alarm_ok", &Message::text(text))
                .await?;
            return Ok(());
        }
        let resolve_at = self
            .settings
            .escalation
            .resolve_after_ok_seconds
            .map(|q| now + (q as i64) * 1000);
        self.store
            .set_auto_resolve(&incident.id, IncidentState::Recovered, resolve_at, now)
            .await?;
        let message = Message {
            tone: Tone::Good,
            text: Text::from(format!("✅ `{name}` is OK again: ")).verbatim(reason),
            ..Default::default()
        };
        self.thread(incident, "cloudwatch", "recovered", &message)
            .await?;
        // The recovery chart: the same metric, now back under its threshold.
        self.attach_alarm_chart(incident, alarm).await?;
        self.request_redraw(&incident.id);
        Ok(())
    }

    /// The alarm's chart in the incident's thread, when it can be drawn.
    pub(super) async fn attach_alarm_chart(
        &self,
        incident: &IncidentRow,
        alarm: &Alarm,
    ) -> Result<(), ActionError> {
        if let Some(image) = self.alarm_chart(alarm).await {
            let root = incident.root_message.as_ref().map(|ts| MessageRef {
                channel: incident.channel.clone(),
                id: ts.clone(),
            });
            self.chat
                .upload_png(&incident.channel, root.as_ref(), &image)
                .await?;
        }
        Ok(())
    }

    /// Records the state an alarm of this incident reported.
    async fn note_alarm_state(
        &self,
        incident: &str,
        alarm: &str,
        state: &str,
        now: i64,
    ) -> Result<(), ActionError> {
        self.store
            .set_incident_alarm(incident, alarm, state, now)
            .await?;
        Ok(())
    }

    /// One more ALARM for an incident that is already firing: its SNS row
    /// is stored, and it is counted (with the message's finish) for one
    /// reply per coalescing window, posted by the repeats sweep.
    async fn repeat(
        &self,
        incident: &IncidentRow,
        name: &str,
        reason: &str,
    ) -> Result<Option<RepeatNote>, ActionError> {
        let window = self.settings.escalation.coalesce_seconds;
        if window == 0 {
            let text = format!("🚨 `{name}` is in ALARM again: {reason}");
            self.thread(incident, "cloudwatch", "alarm", &Message::text(text))
                .await?;
            return Ok(None);
        }
        let due_ms = crate::store::now_ms() + (window as i64) * 1000;
        Ok(Some(RepeatNote::new(&incident.id, name, reason, due_ms)))
    }

    /// Posts the replies of the coalescing windows that have closed; each
    /// is deleted once posted (at least once: a replica that dies while
    /// posting leaves it to another).
    pub(crate) async fn post_due_repeats(&self) -> Result<(), ActionError> {
        let now = crate::store::now_ms();
        let window = self.settings.escalation.coalesce_seconds;
        for w in self.store.claim_due_repeats(now, now + 60_000, 16).await? {
            let Some(incident) = self.store.incident(&w.incident_id).await? else {
                self.store.repeats_posted(&w.id).await?;
                continue;
            };
            let message = Message::text(repeats_summary(&w, window));
            match self
                .thread(&incident, "cloudwatch", "alarm", &message)
                .await
            {
                Ok(_) => self.store.repeats_posted(&w.id).await?,
                Err(e) => {
                    tracing::warn!(incident = %incident.id, error = %e, "repeated alarms not posted; retried");
                    self.store.repeats_retry(&w.id, now + 2_000).await?;
                }
            }
        }
        Ok(())
    }

    /// Level 1, the automated response: the read-only diagnostics that fit
    /// the metric, run at once and posted into the thread.
    pub(super) async fn diagnose(
        self: &Arc<Self>,
        incident: &IncidentRow,
        alarm: &Alarm,
    ) -> Result<(), ActionError> {
        let read_only =
            commands_for(alarm)
                .into_iter()
                .map(|(_, c)| c)
                .find(|c| match self.catalog.parse(c) {
                    Parsed::Run(inv) => !inv.spec.changes,
                    _ => false,
                });
        let Some(command) = read_only else {
            return Ok(());
        };
        let Parsed::Run(inv) = self.catalog.parse(&command) else {
            return Ok(());
        };
        let Some(action) = Action::parse(&inv.spec.action) else {
            return Ok(());
        };
        let cx = ActionContext {
            settings: &self.settings,
            cloud: self.cloud.as_ref(),
            charts: &self.charts,
            clock: self.clock.as_ref(),
            tz: self.tz,
            region: &self.region,
            store: &self.store,
        };
        let root = incident.root_message.as_ref().map(|ts| MessageRef {
            channel: incident.channel.clone(),
            id: ts.clone(),
        });
        match actions::run(action, &cx, &inv).await {
            Ok(Outcome::Reply(reply)) => {
                let mut message = reply.message;
                message.title = message.title.map(|t| format!("L1 diagnostics · {t}"));
                self.thread(incident, "scalebot", "diagnostics", &message)
                    .await?;
                for image in &reply.images {
                    self.chat
                        .upload_png(&incident.channel, root.as_ref(), image)
                        .await?;
                }
            }
            Ok(Outcome::Proposal(_) | Outcome::Posted) => {}
            Err(e) => {
                self.thread(
                    incident,
                    "scalebot",
                    "diagnostics",
                    &Message::text(format!("L1 diagnostics `/scale {command}` failed: {e}")),
                )
                .await?;
            }
        }
        Ok(())
    }
}
