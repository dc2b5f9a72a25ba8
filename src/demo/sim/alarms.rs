//! CloudWatch-like alarms on the simulated account's metrics. Each state
//! change becomes the same alarm JSON that CloudWatch puts into an SNS
//! notification, so the demo's incidents go through the bot's real alarm
//! path ([`crate::alarm::Alarm::from_message`], then `Engine::on_alarm`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::metrics::series;
use super::traffic::Traffic;
use crate::alarm::AlarmState;
use crate::cloud::MetricQuery;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    Less,
}

impl Comparison {
    fn as_str(self) -> &'static str {
        match self {
            Comparison::Greater => "GreaterThanThreshold",
            Comparison::Less => "LessThanThreshold",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Comparison::Greater => "greater than",
            Comparison::Less => "less than",
        }
    }
    fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Greater => value > threshold,
            Comparison::Less => value < threshold,
        }
    }
}

/// One alarm: a single metric, a statistic over `period`, breaching when
/// every one of the last `evaluation_periods` datapoints crosses the
/// threshold. Missing data does not breach.
#[derive(Debug, Clone)]
pub struct AlarmDef {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    /// As GetMetricData names it (`Sum`, `Maximum`, `Average`).
    pub stat: String,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
    pub comparison: Comparison,
    pub threshold: f64,
}

/// The alarms a team following the runbook would have set up.
pub fn runbook_alarms(traffic: &Traffic) -> Vec<AlarmDef> {
    let mut alarms: Vec<AlarmDef> = traffic
        .functions
        .keys()
        .map(|f| AlarmDef {
            name: format!("{f}-throttles"),
            description: format!("Lambda {f} is throttling (runbook: Lambda throttling emergency)"),
            namespace: "AWS/Lambda".into(),
            metric: "Throttles".into(),
            dimensions: vec![("FunctionName".into(), f.clone())],
            stat: "Sum".into(),
            period_seconds: 60,
            evaluation_periods: 2,
            comparison: Comparison::Greater,
            threshold: 5.0,
        })
        .collect();
    alarms.push(AlarmDef {
        name: "matbakh-db-connections".into(),
        description:
            "RDS matbakh-db is running out of connections (runbook: RDS connection exhaustion)"
                .into(),
        namespace: "AWS/RDS".into(),
        metric: "DatabaseConnections".into(),
        dimensions: vec![("DBInstanceIdentifier".into(), super::world::DATABASE.into())],
        stat: "Maximum".into(),
        period_seconds: 60,
        evaluation_periods: 2,
        comparison: Comparison::Greater,
        threshold: 80.0,
    });
    alarms.push(AlarmDef {
        name: "persona-api-provisioned-idle".into(),
        description:
            "persona-api pays for provisioned concurrency it does not use (runbook: cost runaway)"
                .into(),
        namespace: "AWS/Lambda".into(),
        metric: "ProvisionedConcurrencyUtilization".into(),
        dimensions: vec![("FunctionName".into(), "persona-api".into())],
        stat: "Average".into(),
        period_seconds: 60,
        evaluation_periods: 3,
        comparison: Comparison::Less,
        threshold: 0.25,
    });
    alarms
}

/// A state change, with the CloudWatch alarm JSON SNS would carry.
#[derive(Debug, Clone)]
pub struct Transition {
    pub name: String,
    pub old: Option<AlarmState>,
    pub new: AlarmState,
    pub reason: String,
    pub message: String,
}

/// Remembers each alarm's state between evaluations.
pub struct Evaluator {
    defs: Vec<AlarmDef>,
    states: HashMap<String, AlarmState>,
    region: String,
}

impl Evaluator {
    pub fn new(defs: Vec<AlarmDef>, region: &str) -> Self {
        Self {
            defs,
            states: HashMap::new(),
            region: region.to_owned(),
        }
    }

    pub fn defs(&self) -> &[AlarmDef] {
        &self.defs
    }

    /// Evaluates every alarm at `now`. The first evaluation reports only
    /// alarms that start in ALARM (a bot joining a quiet account hears
    /// nothing); later ones report every change.
    pub fn evaluate(&mut self, traffic: &Traffic, now: DateTime<Utc>) -> Vec<Transition> {
        let mut out = Vec::new();
        for def in &self.defs {
            let period = chrono::Duration::seconds(i64::from(def.period_seconds));
            let end = now;
            let start = end - period * (def.evaluation_periods as i32 + 1);
            let query = MetricQuery {
                id: "a".into(),
                namespace: def.namespace.clone(),
                metric: def.metric.clone(),
                dimensions: def.dimensions.clone(),
                stat: def.stat.clone(),
                period_seconds: def.period_seconds,
            };
            let mut points = series(traffic, &query, start, end).points;
            let keep = def.evaluation_periods as usize;
            if points.len() > keep {
                points.drain(..points.len() - keep);
            }
            let breaching = points.len() == keep
                && points
                    .iter()
                    .all(|(_, v)| def.comparison.breaches(*v, def.threshold));
            let new = if breaching {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            };
            let old = self.states.insert(def.name.clone(), new);
            let report = match old {
                None => new == AlarmState::Alarm,
                Some(o) => o != new,
            };
            if report {
                let reason = reason(def, &points, breaching);
                let message = alarm_json(def, old, new, &reason, now, &self.region);
                out.push(Transition {
                    name: def.name.clone(),
                    old,
                    new,
                    reason,
                    message,
                });
            }
        }
        out
    }
}

/// CloudWatch's wording of a state reason.
fn reason(def: &AlarmDef, points: &[(DateTime<Utc>, f64)], breaching: bool) -> String {
    let shown: Vec<String> = points
        .iter()
        .rev()
        .map(|(t, v)| format!("{v:.1} ({})", t.format("%d/%m/%y %H:%M:%S")))
        .collect();
    if points.is_empty() {
        return format!(
            "Threshold Crossed: no datapoints were received for {} periods and {} missing datapoints were treated as [NonBreaching].",
            def.evaluation_periods, def.evaluation_periods
        );
    }
    let (verb, transition) = if breaching {
        ("were", "OK -> ALARM")
    } else {
        ("were not all", "ALARM -> OK")
    };
    format!(
        "Threshold Crossed: {} out of the last {} datapoints [{}] {verb} {} the threshold ({:.2}) (minimum {} datapoints for {transition} transition).",
        points.len(),
        def.evaluation_periods,
        shown.join(", "),
        def.comparison.words(),
        def.threshold,
        def.evaluation_periods
    )
}

fn region_name(code: &str) -> &'static str {
    match code {
        "eu-central-1" => "EU (Frankfurt)",
        "eu-west-1" => "EU (Ireland)",
        "us-east-1" => "US East (N. Virginia)",
        _ => "EU (Frankfurt)",
    }
}

fn alarm_json(
    def: &AlarmDef,
    old: Option<AlarmState>,
    new: AlarmState,
    reason: &str,
    now: DateTime<Utc>,
    region: &str,
) -> String {
    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let topic = format!(
        "arn:aws:sns:{region}:{}:scalebot-demo-alarms",
        super::world::ACCOUNT
    );
    json!({
        "AlarmName": def.name,
        "AlarmDescription": def.description,
        "AWSAccountId": super::world::ACCOUNT,
        "AlarmConfigurationUpdatedTimestamp": stamp,
        "NewStateValue": new.as_str(),
        "NewStateReason": reason,
        "StateChangeTime": stamp,
        "Region": region_name(region),
        "AlarmArn": format!("arn:aws:cloudwatch:{region}:{}:alarm:{}", super::world::ACCOUNT, def.name),
        "OldStateValue": old.unwrap_or(AlarmState::InsufficientData).as_str(),
        "OKActions": [topic],
        "AlarmActions": [topic],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": def.metric,
            "Namespace": def.namespace,
            "StatisticType": "Statistic",
            "Statistic": def.stat.to_ascii_uppercase(),
            "Unit": null,
            "Dimensions": def.dimensions.iter().map(|(k, v)| json!({"value": v, "name": k})).collect::<Vec<_>>(),
            "Period": def.period_seconds,
            "EvaluationPeriods": def.evaluation_periods,
            "DatapointsToAlarm": def.evaluation_periods,
            "ComparisonOperator": def.comparison.as_str(),
            "Threshold": def.threshold,
            "TreatMissingData": "notBreaching",
            "EvaluateLowSampleCountPercentile": ""
        }
    })
    .to_string()
}

/// The SNS notification that would carry `message`, as stored by `/sns`.
pub fn sns_envelope(message_id: &str, t: &Transition, now: DateTime<Utc>, region: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": format!("arn:aws:sns:{region}:{}:scalebot-demo-alarms", super::world::ACCOUNT),
        "Subject": format!("{}: \"{}\" in {}", t.new.as_str(), t.name, region_name(region)),
        "Message": t.message,
        "Timestamp": now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "SignatureVersion": "simulated",
    })
    .to_string()
}
