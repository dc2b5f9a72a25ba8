//! CloudWatch alarms (from SNS) become incidents: an ALARM opens one, or
//! joins the open incident of the same alarm; the root message in the
//! incident channel shows what fired, with the runbook commands that fit the
//! metric; level 1 (automated response) runs the read-only diagnostics at
//! once into the thread. OK marks it recovered; INSUFFICIENT_DATA is shown.

use std::sync::Arc;

use super::IncidentService;
use super::top_message::RootContext;
use super::{NewIncident, level_name};
use crate::alarm::{Alarm, AlarmState};
use crate::catalog::Parsed;
use crate::chat::{Button, ButtonAction, ButtonStyle, Message, MessageRef, Text, Tone};
use crate::config::JoinBy;
use crate::domain::state::IncidentState;
use crate::engine::commands::actions::{self, Action, ActionContext};
use crate::engine::request::{ActionError, Outcome};
use crate::store::IncidentRow;

/// The runbook commands that fit an alarm's metric, as button values.
fn commands_for(alarm: &Alarm) -> Vec<(String, String)> {
    let metric = alarm
        .trigger
        .as_ref()
        .and_then(|t| t.metric_name.clone())
        .unwrap_or_default();
    let function = alarm.function_name().map(str::to_owned);
    let db = alarm.dimension("DBInstanceIdentifier").map(str::to_owned);
    match (metric.as_str(), function, db) {
        ("Throttles" | "ConcurrentExecutions", Some(f), _) => vec![
            ("Throttles".into(), format!("throttles {f}")),
            (
                "Raise reserved concurrency".into(),
                format!("concurrency {f} 100"),
            ),
        ],
        ("DatabaseConnections", _, Some(db)) => vec![
            ("RDS connections".into(), format!("rds connections {db}")),
            ("Enable RDS Proxy".into(), format!("rds proxy {db}")),
        ],
        (m, _, _)
            if m.contains("ProvisionedConcurrency")
                || m.contains("Cost")
                || m == "EstimatedCharges" =>
        {
            vec![("Cost by service".into(), "cost 7".into())]
        }
        _ => vec![
            ("Scaling policies".into(), "policies".into()),
            ("Scaling activities".into(), "activities".into()),
        ],
    }
}

/// The statistic name GetMetricData expects (`SUM` → `Sum`).
fn stat_name(raw: &str) -> String {
    match raw.to_ascii_uppercase().as_str() {
        "SUM" => "Sum".into(),
        "AVERAGE" => "Average".into(),
        "MAXIMUM" => "Maximum".into(),
        "MINIMUM" => "Minimum".into(),
        "SAMPLECOUNT" => "SampleCount".into(),
        _ => raw.to_owned(),
    }
}

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

/// Repeated ALARM notifications for one incident, gathered for one reply.
#[derive(Debug, Default)]
pub(crate) struct Repeats {
    count: u64,
    alarms: std::collections::BTreeSet<String>,
    last_reason: String,
}

impl Repeats {
    fn add(&mut self, alarm: &str, reason: &str) {
        self.count += 1;
        self.alarms.insert(alarm.to_owned());
        reason.clone_into(&mut self.last_reason);
    }

    fn summary(&self, window: u64) -> String {
        let names: Vec<String> = self.alarms.iter().map(|a| format!("`{a}`")).collect();
        if self.count == 1 {
            format!(
                "🚨 {} is in ALARM again: {}",
                names.join(", "),
                self.last_reason
            )
        } else {
            format!(
                "🚨 {} fired {} more times within {window} s. Latest: {}",
                names.join(", "),
                self.count,
                self.last_reason
            )
        }
    }
}

/// What a person does to an incident, by button or by command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentVerb {
    Acknowledge,
    Escalate,
    Resolve,
}

impl IncidentService {
    /// The alarm's metric over the last 3 hours with its threshold, for
    /// single-metric alarms (metric math is left to the console link).
    async fn alarm_chart(&self, alarm: &Alarm) -> Option<crate::chat::Image> {
        use crate::chart::plan::{QuerySet, by_id};
        use crate::chart::{Axis, ChartData, SeriesData, Threshold};
        let t = alarm.trigger.as_ref()?;
        let (namespace, metric) = (t.namespace.clone()?, t.metric_name.clone()?);
        let stat = t
            .extended_statistic
            .clone()
            .or_else(|| t.statistic.as_deref().map(stat_name))?;
        let period = u32::try_from(t.period.unwrap_or(60)).ok()?.max(60);
        let dims = t
            .dimensions
            .iter()
            .map(|d| (d.name.clone(), d.value.clone()))
            .collect();
        let now = self.now();
        let start = now - chrono::Duration::hours(3);
        let mut queries = QuerySet::default();
        let id = queries.add(&namespace, &metric, dims, &stat, period);
        let series = match self
            .cloud
            .metric_data(&queries.into_request(start, now))
            .await
        {
            Ok(s) => by_id(s).remove(&id).unwrap_or_default(),
            Err(e) => {
                tracing::info!(error = %e, "alarm chart not drawn");
                return None;
            }
        };
        let name = alarm.alarm_name.clone().unwrap_or_default();
        let data = ChartData {
            title: format!("{name}: {metric} ({stat}, last 3 h)"),
            y_label: metric.clone(),
            y2_label: String::new(),
            start,
            end: now,
            tz: self.tz,
            series: vec![SeriesData {
                label: format!("{namespace} {metric}"),
                color: (214, 39, 40),
                axis: Axis::Left,
                points: series.points,
            }],
            thresholds: t
                .threshold
                .map(|v| Threshold {
                    label: "Alarm threshold".into(),
                    value: v,
                    color: (85, 85, 85),
                })
                .into_iter()
                .collect(),
            width: 1000,
            height: 500,
        };
        crate::chart::plan::image(&data, format!("alarm-{}.png", now.format("%Y%m%dT%H%M"))).ok()
    }

    /// The alarm's part of an incident's root message: reason, metric,
    /// console link and the runbook buttons; [`IncidentService::root_message`] adds
    /// the incident's title, state, times and buttons.
    pub(crate) fn alarm_root(&self, incident: &IncidentRow, alarm: &Alarm) -> Message {
        let trigger = alarm.trigger.as_ref();
        let metric = trigger
            .and_then(|t| {
                Some(format!(
                    "{} {} {} {}",
                    t.namespace.clone()?,
                    t.metric_name.clone()?,
                    t.comparison_operator.clone().unwrap_or_default(),
                    t.threshold.map(|v| v.to_string()).unwrap_or_default()
                ))
            })
            .unwrap_or_else(|| "metric math".into());
        let mut message = Message {
            // CloudWatch's words, not the bot's: verbatim.
            text: Text::new().verbatim(
                alarm
                    .new_state_reason
                    .clone()
                    .unwrap_or_else(|| "No reason given.".into()),
            ),
            footer: alarm
                .console_url()
                .map(|u| Text::new().link(u, "Open the alarm in the CloudWatch console")),
            ..Default::default()
        }
        .field("Metric", metric);
        for (label, command) in commands_for(alarm) {
            message.buttons.push(Button {
                label,
                // The incident rides along so that a plan joins it.
                action: ButtonAction::Run {
                    command,
                    incident: Some(incident.id.clone()),
                },
                style: ButtonStyle::Default,
                confirm: None,
            });
        }
        message
    }

    /// What makes two alarm notifications the same incident.
    fn dedup_key(&self, alarm: &Alarm, name: &str) -> String {
        match (self.settings.escalation.join_by, resource_of(alarm)) {
            (JoinBy::Resource, Some(resource)) => format!("resource:{resource}"),
            _ => format!("alarm:{name}"),
        }
    }

    /// Handles one alarm state change from SNS.
    pub async fn on_alarm(self: &Arc<Self>, alarm: Alarm) -> Result<(), ActionError> {
        let name = alarm
            .alarm_name
            .clone()
            .unwrap_or_else(|| "unnamed alarm".into());
        let key = self.dedup_key(&alarm, &name);
        let lock = self.alarm_locks.entry(key.clone()).or_default().clone();
        let _in_order = lock.lock().await;
        let existing = self.store.open_incident_by_key(&key).await?;
        let reason = alarm.new_state_reason.clone().unwrap_or_default();
        let now = self.now().timestamp_millis();
        if let (Some(state), Some(incident)) = (alarm.state(), &existing) {
            self.note_alarm_state(&incident.id, &name, state.as_str(), now)
                .await?;
        }
        let said = |kind: &'static str, text: String| (kind, Message::text(text));
        let (incident, (kind, message)) = match (alarm.state(), existing) {
            (Some(AlarmState::Alarm), Some(incident))
                if incident.state == IncidentState::Recovered =>
            {
                return self.fired_again(&incident, &name, &reason, now).await;
            }
            (Some(AlarmState::Alarm), Some(incident)) => {
                return self.repeat(&incident, &name, &reason).await;
            }
            (Some(AlarmState::Alarm), None) => {
                return self.open_for_alarm(&alarm, &key, &name, &reason, now).await;
            }
            (Some(AlarmState::Ok), Some(incident)) => {
                return self.alarm_ok(&incident, &alarm, &name, &reason, now).await;
            }
            (state, None) => {
                // Not an incident, but shown rather than dropped.
                let label = state.map(|s| s.as_str()).unwrap_or("an unknown state");
                let text = format!("ℹ️ CloudWatch alarm `{name}` is {label}: {reason}");
                let channel = &self.settings.channels.incidents;
                self.chat.post(channel, None, &Message::text(text)).await?;
                return Ok(());
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
        Ok(())
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
    ) -> Result<(), ActionError> {
        let new = NewIncident {
            title: format!("ALARM: {name}"),
            level: 1,
            source: "alarm",
            dedup_key: Some(key.to_owned()),
            reason: reason.to_owned(),
            context: RootContext::Alarm(Box::new(alarm.clone())),
            acknowledged_by: None,
        };
        let incident = match self.open_incident(new, "cloudwatch").await {
            Ok(incident) => incident,
            // Another replica opened it first (the store allows one
            // unresolved incident per key): join that one.
            Err(e) => match self.store.open_incident_by_key(key).await? {
                Some(theirs) => {
                    self.note_alarm_state(&theirs.id, name, "ALARM", now)
                        .await?;
                    return self.repeat(&theirs, name, reason).await;
                }
                None => return Err(e),
            },
        };
        self.note_alarm_state(&incident.id, name, "ALARM", now)
            .await?;
        self.attach_alarm_chart(&incident, alarm).await?;
        self.diagnose(&incident, alarm).await
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
    async fn attach_alarm_chart(
        &self,
        incident: &IncidentRow,
        alarm: &Alarm,
    ) -> Result<(), ActionError> {
        if let Some(image) = self.alarm_chart(alarm).await {
            let root = incident.root_ts.as_ref().map(|ts| MessageRef {
                channel: incident.channel.clone(),
                id: ts.clone(),
            });
            self.chat
                .upload_png(&incident.channel, root.as_ref(), &image)
                .await?;
        }
        Ok(())
    }

    /// Records the state an alarm of this incident reported, writing only
    /// when it changed (a storm repeats the same state thousands of times).
    async fn note_alarm_state(
        &self,
        incident: &str,
        alarm: &str,
        state: &str,
        now: i64,
    ) -> Result<(), ActionError> {
        let key = (incident.to_owned(), alarm.to_owned());
        if self
            .alarm_states
            .get(&key)
            .is_some_and(|s| s.as_str() == state)
        {
            return Ok(());
        }
        self.store
            .set_incident_alarm(incident, alarm, state, now)
            .await?;
        self.alarm_states.insert(key, state.to_owned());
        Ok(())
    }

    /// One more ALARM for an incident that is already firing: its SNS row
    /// is stored, and it is posted with the others that arrive within the
    /// coalescing window.
    async fn repeat(
        self: &Arc<Self>,
        incident: &IncidentRow,
        name: &str,
        reason: &str,
    ) -> Result<(), ActionError> {
        let text = format!("🚨 `{name}` is in ALARM again: {reason}");
        let window = self.settings.escalation.coalesce_seconds;
        if window == 0 {
            self.thread(incident, "cloudwatch", "alarm", &Message::text(text))
                .await?;
            return Ok(());
        }
        // Each notification is already a row in sns_messages; the
        // timeline gets one event per coalesced reply (see below).
        let mut first = false;
        self.repeats
            .entry(incident.id.clone())
            .and_modify(|r| r.add(name, reason))
            .or_insert_with(|| {
                first = true;
                let mut r = Repeats::default();
                r.add(name, reason);
                r
            });
        if first {
            let engine = self.clone();
            let incident = incident.clone();
            let stop = self.shutdown.clone();
            self.spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(window)) => {}
                }
                let Some((_, r)) = engine.repeats.remove(&incident.id) else {
                    return;
                };
                let message = Message::text(r.summary(window));
                if let Err(e) = engine
                    .thread(&incident, "cloudwatch", "alarm", &message)
                    .await
                {
                    tracing::warn!(incident = %incident.id, error = %e, "repeated alarms not posted");
                }
            });
        }
        Ok(())
    }

    /// Level 1, the automated response: the read-only diagnostics that fit
    /// the metric, run at once and posted into the thread.
    async fn diagnose(
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
        let root = incident.root_ts.as_ref().map(|ts| MessageRef {
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

    /// The Acknowledge, Escalate and Resolve buttons of an incident's root
    /// message (and the same words after `/scale incident <id>`).
    pub(crate) async fn act(
        &self,
        user: &str,
        verb: IncidentVerb,
        id: &str,
    ) -> Result<Option<String>, ActionError> {
        let Some(incident) = self.store.incident(id).await? else {
            return Ok(Some(format!("There is no incident `{id}`.")));
        };
        let now = self.now().timestamp_millis();
        let (changed, kind, text) = match verb {
            IncidentVerb::Acknowledge => (
                self.store
                    .ack_incident(id, now, self.settings.escalation.ack_stops_clock)
                    .await?,
                "acknowledged",
                Text::from("👀 Acknowledged by ").user(user).markup("."),
            ),
            IncidentVerb::Escalate => {
                if self.escalate_now(&incident, user).await? {
                    return Ok(None);
                }
                return Ok(Some(format!(
                    "Incident `{id}` cannot move up (it is {} at {}).",
                    incident.state,
                    level_name(incident.level)
                )));
            }
            IncidentVerb::Resolve => (
                self.store.resolve_incident(id, now).await?,
                "resolved",
                Text::from("🏁 Resolved by ").user(user).markup("."),
            ),
        };
        if !changed {
            return Ok(Some(format!(
                "Incident `{id}` is {}; nothing changed.",
                incident.state
            )));
        }
        self.thread(&incident, user, kind, &Message::text(text))
            .await?;
        self.request_redraw(id);
        Ok(None)
    }

    /// Resolves recovered incidents whose quiet period is over.
    pub(crate) async fn auto_resolve_due(&self) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        for incident in self.store.due_auto_resolves(now).await? {
            if !self.store.resolve_incident(&incident.id, now).await? {
                continue;
            }
            let quiet = self
                .settings
                .escalation
                .resolve_after_ok_seconds
                .unwrap_or(0)
                / 60;
            self.thread(
                &incident,
                "scalebot",
                "resolved",
                &Message {
                    tone: Tone::Good,
                    text: format!(
                        "🏁 Resolved automatically: the alarm stayed OK for {quiet} min."
                    )
                    .into(),
                    ..Default::default()
                },
            )
            .await?;
            self.request_redraw(&incident.id);
        }
        Ok(())
    }

    /// `/scale incident <id> keep`: a recovered incident stays open.
    pub(crate) async fn keep_open(
        &self,
        incident: &IncidentRow,
        user: &str,
    ) -> Result<bool, ActionError> {
        if incident.state != IncidentState::Recovered {
            return Ok(false);
        }
        let now = self.now().timestamp_millis();
        self.store
            .set_auto_resolve(&incident.id, IncidentState::Recovered, None, now)
            .await?;
        self.thread(
            incident,
            user,
            "kept_open",
            &Message::text(
                Text::from("📌 Kept open by ")
                    .user(user)
                    .markup("; it will not resolve itself."),
            ),
        )
        .await?;
        Ok(true)
    }
}
