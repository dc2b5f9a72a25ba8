//! What an alarm incident shows: its root message (what fired, the metric,
//! the console link, the runbook buttons that fit the metric) and its
//! chart.

use super::IncidentService;
use crate::alarm::Alarm;
use crate::chat::{Button, ButtonAction, ButtonStyle, Message, Text};
use crate::store::IncidentRow;

/// The runbook commands that fit an alarm's metric, as button values.
pub(super) fn commands_for(alarm: &Alarm) -> Vec<(String, String)> {
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
                crate::engine::commands::actions::raise_reserved_command(&f),
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

impl IncidentService {
    /// The alarm's metric over the last 3 hours with its threshold, for
    /// single-metric alarms (metric math is left to the console link).
    pub(super) async fn alarm_chart(&self, alarm: &Alarm) -> Option<crate::chat::Image> {
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
}
