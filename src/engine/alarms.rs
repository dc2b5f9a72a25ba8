//! CloudWatch alarms (from SNS) become incidents: an ALARM opens one, or
//! joins the open incident of the same alarm; the root message in the
//! incident channel shows what fired, with the runbook commands that fit the
//! metric; level 1 (automated response) runs the read-only diagnostics at
//! once into the thread. OK marks it recovered; INSUFFICIENT_DATA is shown.

use std::sync::Arc;

use super::incident::{NewIncident, level_name};
use super::{ActionError, Engine, Outcome};
use crate::alarm::{Alarm, AlarmState};
use crate::catalog::Parsed;
use crate::chat::{Button, ButtonStyle, Message, MessageRef, Tone};
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

impl Engine {
    /// The alarm's metric over the last 3 hours with its threshold, for
    /// single-metric alarms (metric math is left to the console link).
    async fn alarm_chart(&self, alarm: &Alarm) -> Option<crate::chat::Image> {
        use super::charting::{QuerySet, by_id};
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
        super::charting::image(&data, format!("alarm-{}.png", now.format("%Y%m%dT%H%M"))).ok()
    }

    fn alarm_root(&self, incident: &IncidentRow, alarm: &Alarm) -> Message {
        let opened =
            chrono::DateTime::from_timestamp_millis(incident.opened_ms).unwrap_or_default();
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
            title: Some(format!("{} · {}", incident.id, incident.title)),
            tone: if incident.state == "recovered" {
                Tone::Good
            } else {
                Tone::Bad
            },
            text: alarm
                .new_state_reason
                .clone()
                .unwrap_or_else(|| "No reason given.".into()),
            footer: alarm
                .console_url()
                .map(|u| format!("<{u}|Open the alarm in the CloudWatch console>")),
            ..Default::default()
        }
        .field("Level", level_name(incident.level))
        .field("State", incident.state.clone())
        .field("Started", super::format::stamp(opened, self.tz))
        .field("Metric", metric);
        message.buttons = vec![
            Button {
                label: "Acknowledge".into(),
                action_id: "incident.ack".into(),
                value: incident.id.clone(),
                style: ButtonStyle::Primary,
                confirm: None,
            },
            Button {
                label: "Resolve".into(),
                action_id: "incident.resolve".into(),
                value: incident.id.clone(),
                style: ButtonStyle::Default,
                confirm: None,
            },
        ];
        for (label, command) in commands_for(alarm) {
            message.buttons.push(Button {
                label,
                action_id: "run".into(),
                // The incident rides along so that a plan joins it.
                value: format!("{command}{}{}", super::confirm::INCIDENT_SEP, incident.id),
                style: ButtonStyle::Default,
                confirm: None,
            });
        }
        message
    }

    /// Handles one alarm state change from SNS.
    pub async fn on_alarm(self: &Arc<Self>, alarm: Alarm) -> Result<(), ActionError> {
        let name = alarm
            .alarm_name
            .clone()
            .unwrap_or_else(|| "unnamed alarm".into());
        let key = format!("alarm:{name}");
        let lock = self.alarm_locks.entry(key.clone()).or_default().clone();
        let _in_order = lock.lock().await;
        let existing = self.store.open_incident_by_key(&key).await?;
        let reason = alarm.new_state_reason.clone().unwrap_or_default();
        match (alarm.state(), existing) {
            (Some(AlarmState::Alarm), Some(incident)) => {
                // Firing again: no longer recovered, and not resolving itself.
                if incident.state == "recovered" {
                    let now = self.now().timestamp_millis();
                    self.store
                        .set_auto_resolve(&incident.id, "open", None, now)
                        .await?;
                }
                self.thread(
                    &incident,
                    "cloudwatch",
                    "alarm",
                    &Message::text(format!("🚨 `{name}` is in ALARM again: {reason}")),
                )
                .await?;
            }
            (Some(AlarmState::Alarm), None) => {
                let new = NewIncident {
                    title: format!("ALARM: {name}"),
                    level: 1,
                    source: "alarm",
                    dedup_key: Some(key.clone()),
                    reason: reason.clone(),
                };
                let incident = match self
                    .open_incident(new, "cloudwatch", |i| self.alarm_root(i, &alarm))
                    .await
                {
                    Ok(incident) => incident,
                    // Another replica opened it first (the store allows one
                    // unresolved incident per alarm): join that one.
                    Err(e) => match self.store.open_incident_by_key(&key).await? {
                        Some(theirs) => {
                            self.thread(
                                &theirs,
                                "cloudwatch",
                                "alarm",
                                &Message::text(format!("🚨 `{name}` is in ALARM again: {reason}")),
                            )
                            .await?;
                            return Ok(());
                        }
                        None => return Err(e),
                    },
                };
                if let Some(image) = self.alarm_chart(&alarm).await {
                    let root = incident.root_ts.as_ref().map(|ts| MessageRef {
                        channel: incident.channel.clone(),
                        id: ts.clone(),
                    });
                    self.chat
                        .upload_png(&incident.channel, root.as_ref(), &image)
                        .await?;
                }
                self.diagnose(&incident, &alarm).await?;
            }
            (Some(AlarmState::Ok), Some(incident)) => {
                let now = self.now().timestamp_millis();
                let resolve_at = self
                    .settings
                    .escalation
                    .resolve_after_ok_seconds
                    .map(|q| now + (q as i64) * 1000);
                self.store
                    .set_auto_resolve(&incident.id, "recovered", resolve_at, now)
                    .await?;
                self.thread(
                    &incident,
                    "cloudwatch",
                    "recovered",
                    &Message {
                        tone: Tone::Good,
                        text: format!("✅ `{name}` is OK again: {reason}"),
                        ..Default::default()
                    },
                )
                .await?;
                let mut updated = incident.clone();
                updated.state = "recovered".into();
                if let Some(ts) = &incident.root_ts {
                    let at = MessageRef {
                        channel: incident.channel.clone(),
                        id: ts.clone(),
                    };
                    self.chat
                        .update(&at, &self.alarm_root(&updated, &alarm))
                        .await?;
                }
            }
            (Some(AlarmState::InsufficientData), Some(incident)) => {
                self.thread(
                    &incident,
                    "cloudwatch",
                    "insufficient_data",
                    &Message::text(format!(
                        "⚪ `{name}` has INSUFFICIENT_DATA: {reason} Check that the metric is still published."
                    )),
                )
                .await?;
            }
            (state, None) => {
                // Not an incident, but shown rather than dropped.
                let label = state.map(|s| s.as_str()).unwrap_or("an unknown state");
                self.chat
                    .post(
                        &self.settings.channels.incidents,
                        None,
                        &Message::text(format!(
                            "ℹ️ CloudWatch alarm `{name}` is {label}: {reason}"
                        )),
                    )
                    .await?;
            }
            (None, Some(incident)) => {
                self.thread(
                    &incident,
                    "cloudwatch",
                    "unknown_state",
                    &Message::text(format!(
                        "`{name}` reported a state CloudWatch does not define: {reason}"
                    )),
                )
                .await?;
            }
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
        let req = super::CommandRequest {
            platform: super::Platform::Slack,
            user: "scalebot".into(),
            channel: incident.channel.clone(),
            text: command.clone(),
            incident: Some(incident.id.clone()),
        };
        let root = incident.root_ts.as_ref().map(|ts| MessageRef {
            channel: incident.channel.clone(),
            id: ts.clone(),
        });
        match super::actions::run(self, &inv, &req).await {
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

    /// The Acknowledge and Resolve buttons of an incident's root message.
    pub(super) async fn incident_button(
        &self,
        user: &str,
        action: &str,
        id: &str,
    ) -> Result<Option<String>, ActionError> {
        let Some(incident) = self.store.incident(id).await? else {
            return Ok(Some(format!("There is no incident `{id}`.")));
        };
        let now = self.now().timestamp_millis();
        let (changed, kind, text) = match action {
            "incident.ack" => (
                self.store.ack_incident(id, now).await?,
                "acknowledged",
                format!("👀 Acknowledged by {}.", crate::chat::mention(user)),
            ),
            _ => (
                self.store.resolve_incident(id, now).await?,
                "resolved",
                format!("🏁 Resolved by {}.", crate::chat::mention(user)),
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
        if let Some(ts) = &incident.root_ts {
            let at = MessageRef {
                channel: incident.channel.clone(),
                id: ts.clone(),
            };
            let mut root = Message {
                title: Some(format!("{} · {}", incident.id, incident.title)),
                tone: if kind == "resolved" {
                    Tone::Good
                } else {
                    Tone::Warning
                },
                text: format!("{} {}", level_name(incident.level), kind),
                ..Default::default()
            }
            .field("State", kind);
            if kind == "acknowledged" {
                root.buttons.push(Button {
                    label: "Resolve".into(),
                    action_id: "incident.resolve".into(),
                    value: incident.id.clone(),
                    style: ButtonStyle::Default,
                    confirm: None,
                });
            }
            self.chat.update(&at, &root).await?;
        }
        Ok(None)
    }

    /// Resolves recovered incidents whose quiet period is over.
    pub(super) async fn auto_resolve_due(&self) -> Result<(), ActionError> {
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
                    ),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok(())
    }

    /// `/scale incident <id> keep`: a recovered incident stays open.
    pub(super) async fn keep_open(
        &self,
        incident: &IncidentRow,
        user: &str,
    ) -> Result<bool, ActionError> {
        if incident.state != "recovered" {
            return Ok(false);
        }
        let now = self.now().timestamp_millis();
        self.store
            .set_auto_resolve(&incident.id, "recovered", None, now)
            .await?;
        self.thread(
            incident,
            user,
            "kept_open",
            &Message::text(format!(
                "📌 Kept open by {}; it will not resolve itself.",
                crate::chat::mention(user)
            )),
        )
        .await?;
        Ok(true)
    }
}
