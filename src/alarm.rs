//! The CloudWatch alarm JSON that SNS carries, as a string, in `Message`.
//!
//! AWS leaves out fields depending on the alarm kind (a metric-math alarm has
//! no `MetricName`, an anomaly alarm no `Threshold`) and sends `null` where a
//! value is unset, so nearly everything is optional and a missing field is
//! never a reason to drop an alarm notification.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("the SNS message is not CloudWatch alarm JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The three states a CloudWatch alarm can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "OK" => Some(Self::Ok),
            "ALARM" => Some(Self::Alarm),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Alarm => "ALARM",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alarm {
    #[serde(default)]
    pub alarm_name: Option<String>,
    #[serde(default)]
    pub alarm_description: Option<String>,
    #[serde(default, rename = "AWSAccountId")]
    pub aws_account_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "aws_time",
        serialize_with = "aws_time_out"
    )]
    pub alarm_configuration_updated_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub new_state_value: Option<String>,
    #[serde(default)]
    pub old_state_value: Option<String>,
    #[serde(default)]
    pub new_state_reason: Option<String>,
    #[serde(
        default,
        deserialize_with = "aws_time",
        serialize_with = "aws_time_out"
    )]
    pub state_change_time: Option<DateTime<Utc>>,
    /// A display name such as "US East (N. Virginia)", not a region code;
    /// see [`Alarm::region_code`].
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub alarm_arn: Option<String>,
    #[serde(default, rename = "OKActions", deserialize_with = "null_default")]
    pub ok_actions: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub alarm_actions: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub insufficient_data_actions: Vec<String>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
}

/// What the alarm watches. A single-metric alarm fills the metric fields; a
/// metric-math alarm leaves them out and fills `metrics` instead.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trigger {
    #[serde(default)]
    pub metric_name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// `Statistic` or `ExtendedStatistic`.
    #[serde(default)]
    pub statistic_type: Option<String>,
    /// Upper case here (`SUM`, `AVERAGE`), unlike `MetricStat.Stat`.
    #[serde(default)]
    pub statistic: Option<String>,
    #[serde(default)]
    pub extended_statistic: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub dimensions: Vec<Dimension>,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub evaluation_periods: Option<u32>,
    #[serde(default)]
    pub datapoints_to_alarm: Option<u32>,
    #[serde(default)]
    pub comparison_operator: Option<String>,
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Set instead of `threshold` on anomaly-detection alarms.
    #[serde(default)]
    pub threshold_metric_id: Option<String>,
    /// Often an odd string such as `"- TreatMissingData:   missing"`; see
    /// [`Trigger::treat_missing_data`].
    #[serde(default, rename = "TreatMissingData")]
    pub treat_missing_data_raw: Option<String>,
    #[serde(default)]
    pub evaluate_low_sample_count_percentile: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub metrics: Vec<MetricQuery>,
}

impl Trigger {
    /// The bare setting (`missing`, `breaching`, ...) without the label
    /// CloudWatch sometimes prefixes it with.
    pub fn treat_missing_data(&self) -> Option<&str> {
        let raw = self.treat_missing_data_raw.as_deref()?.trim();
        let value = raw
            .trim_start_matches('-')
            .trim_start()
            .strip_prefix("TreatMissingData:")
            .unwrap_or(raw)
            .trim();
        (!value.is_empty()).then_some(value)
    }
}

/// The Trigger uses lower-case `name`/`value`; the upper-case spelling of the
/// CloudWatch API is accepted too so either form parses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Dimension {
    #[serde(alias = "Name")]
    pub name: String,
    #[serde(alias = "Value")]
    pub value: String,
}

/// One entry of a metric-math alarm's `Metrics[]`: an expression or a metric.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricQuery {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub return_data: Option<bool>,
    #[serde(default)]
    pub metric_stat: Option<MetricStat>,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    #[serde(default)]
    pub metric: Option<MetricRef>,
    #[serde(default)]
    pub period: Option<u64>,
    /// Mixed case here (`Average`), unlike `Trigger.Statistic`.
    #[serde(default)]
    pub stat: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricRef {
    #[serde(default)]
    pub metric_name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub dimensions: Vec<Dimension>,
}

impl Alarm {
    /// Decodes the `Message` string of an SNS notification (the second JSON
    /// decode: `Message` is JSON inside a JSON string).
    pub fn from_message(message: &str) -> Result<Self, AlarmError> {
        Ok(serde_json::from_str(message)?)
    }

    /// What keeps one alarm's notifications in order: the alarm (its ARN,
    /// else its name) and the time of its state change; `None` for a
    /// message that is not an alarm.
    pub fn order_of(message: &str) -> Option<(String, Option<i64>)> {
        let alarm = Self::from_message(message).ok()?;
        let key = alarm.alarm_arn.or(alarm.alarm_name)?;
        Some((key, alarm.state_change_time.map(|t| t.timestamp_millis())))
    }

    /// `None` for a state CloudWatch has not defined, so a new state is
    /// shown as unknown rather than failing the whole notification.
    pub fn state(&self) -> Option<AlarmState> {
        self.new_state_value.as_deref().and_then(AlarmState::parse)
    }

    pub fn old_state(&self) -> Option<AlarmState> {
        self.old_state_value.as_deref().and_then(AlarmState::parse)
    }

    /// The region code (`us-east-1`), which only the ARN carries: `Region`
    /// is a display name that no API accepts.
    pub fn region_code(&self) -> Option<&str> {
        arn_part(self.alarm_arn.as_deref()?, 3)
    }

    /// The alarm's dimension value. A metric-math alarm has no top-level
    /// dimensions, so its metrics are searched next, in order, so that an
    /// expression over a Lambda metric still names its function.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        let trigger = self.trigger.as_ref()?;
        let metric_dims = trigger
            .metrics
            .iter()
            .filter_map(|m| m.metric_stat.as_ref()?.metric.as_ref())
            .flat_map(|m| m.dimensions.iter());
        trigger
            .dimensions
            .iter()
            .chain(metric_dims)
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    /// The Lambda function the alarm is about, which is what the scaling
    /// commands take.
    pub fn function_name(&self) -> Option<&str> {
        self.dimension("FunctionName")
    }

    /// A link that opens this alarm in the CloudWatch console of its own
    /// region and partition.
    pub fn console_url(&self) -> Option<String> {
        let arn = self.alarm_arn.as_deref()?;
        let region = self.region_code()?;
        let name = match self.alarm_name.as_deref() {
            Some(name) => name,
            None => arn.splitn(7, ':').nth(6)?,
        };
        let host = match arn_part(arn, 1)? {
            "aws-cn" => format!("{region}.console.amazonaws.cn"),
            "aws-us-gov" => "console.amazonaws-us-gov.com".to_string(),
            _ => format!("{region}.console.aws.amazon.com"),
        };
        Some(format!(
            "https://{host}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
            percent_encode(name)
        ))
    }
}

/// `arn:partition:service:region:account:resource...`; empty parts are
/// treated as absent.
fn arn_part(arn: &str, index: usize) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    parts.nth(index - 1).filter(|p| !p.is_empty())
}

/// Alarm names may hold spaces, slashes and more; the console wants them
/// percent-encoded in the fragment.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// CloudWatch writes `2025-05-14T10:00:41.208+0000`: no colon in the offset,
/// so strict RFC 3339 refuses it. RFC 3339 and a bare UTC time are tried
/// after, in case a producer normalises it.
fn parse_aws_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn aws_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => parse_aws_time(&text).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not a CloudWatch timestamp"))
        }),
    }
}

/// Written back in CloudWatch's own spelling, so a stored alarm reads again.
fn aws_time_out<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()),
        None => s.serialize_none(),
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The `Message` of the single-metric example in protocols.md §7, taken
    /// from the whole SNS body so the double decode is exercised too.
    const SNS_BODY: &str = r#"{"Type":"Notification","MessageId":"6f3c1a52-0d7e-5b8e-9a1f-2c7d4e8b9a10","TopicArn":"arn:aws:sns:us-east-1:123456789012:chatops-alarms","Subject":"ALARM: \"prod-api-5xx-high\" in US East (N. Virginia)","Message":"{\"AlarmName\":\"prod-api-5xx-high\",\"AlarmDescription\":\"ALB target 5xx above 50 per 5 min\",\"AWSAccountId\":\"123456789012\",\"AlarmConfigurationUpdatedTimestamp\":\"2025-05-02T08:15:03.112+0000\",\"NewStateValue\":\"ALARM\",\"NewStateReason\":\"Threshold Crossed: 2 out of the last 2 datapoints [87.0 (14/05/25 09:55:00), 63.0 (14/05/25 09:50:00)] were greater than the threshold (50.0) (minimum 2 datapoints for OK -> ALARM transition).\",\"StateChangeTime\":\"2025-05-14T10:00:41.208+0000\",\"Region\":\"US East (N. Virginia)\",\"AlarmArn\":\"arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-5xx-high\",\"OldStateValue\":\"OK\",\"OKActions\":[\"arn:aws:sns:us-east-1:123456789012:chatops-alarms\"],\"AlarmActions\":[\"arn:aws:sns:us-east-1:123456789012:chatops-alarms\"],\"InsufficientDataActions\":[],\"Trigger\":{\"MetricName\":\"HTTPCode_Target_5XX_Count\",\"Namespace\":\"AWS/ApplicationELB\",\"StatisticType\":\"Statistic\",\"Statistic\":\"SUM\",\"Unit\":null,\"Dimensions\":[{\"value\":\"app/prod-api/4a4513393260c7c5\",\"name\":\"LoadBalancer\"}],\"Period\":300,\"EvaluationPeriods\":2,\"DatapointsToAlarm\":2,\"ComparisonOperator\":\"GreaterThanThreshold\",\"Threshold\":50.0,\"TreatMissingData\":\"- TreatMissingData:                    missing\",\"EvaluateLowSampleCountPercentile\":\"\"}}","Timestamp":"2025-05-14T10:00:41.262Z","SignatureVersion":"2","Signature":"<base64 RSA signature>","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-<hash>.pem","UnsubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:chatops-alarms:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"}"#;

    const METRIC_MATH: &str = r#"{"AlarmName":"ec2 network/out","AlarmArn":"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:ec2 network/out","NewStateValue":"INSUFFICIENT_DATA","AlarmDescription":null,
      "Trigger": {"Period":60,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0.0,
      "TreatMissingData":"- TreatMissingData:                    missing","EvaluateLowSampleCountPercentile":"",
      "Metrics":[
        {"Expression":"m1*1","Id":"e1","Label":"Expression1","ReturnData":true},
        {"Id":"m1","MetricStat":{"Metric":{"Dimensions":[{"value":"TestInstance","name":"InstanceId"}],
          "MetricName":"NetworkOut","Namespace":"AWS/EC2"},"Period":60,"Stat":"Average"},"ReturnData":false}]}}"#;

    fn example() -> Alarm {
        let body: serde_json::Value = serde_json::from_str(SNS_BODY).expect("SNS body");
        let message = body["Message"].as_str().expect("Message is a string");
        Alarm::from_message(message).expect("alarm JSON")
    }

    #[test]
    fn a_stored_alarm_reads_back_the_same() {
        let alarm = example();
        let stored = serde_json::to_string(&alarm).expect("serializes");
        assert_eq!(Alarm::from_message(&stored).expect("reads back"), alarm);
    }

    #[test]
    fn parses_the_single_metric_example() {
        let alarm = example();
        assert_eq!(alarm.alarm_name.as_deref(), Some("prod-api-5xx-high"));
        assert_eq!(alarm.aws_account_id.as_deref(), Some("123456789012"));
        assert_eq!(alarm.state(), Some(AlarmState::Alarm));
        assert_eq!(alarm.old_state(), Some(AlarmState::Ok));
        assert_eq!(alarm.region.as_deref(), Some("US East (N. Virginia)"));
        assert_eq!(alarm.region_code(), Some("us-east-1"));
        let changed = Utc
            .with_ymd_and_hms(2025, 5, 14, 10, 0, 41)
            .single()
            .expect("valid")
            + chrono::Duration::milliseconds(208);
        assert_eq!(alarm.state_change_time, Some(changed));
        assert!(alarm.alarm_configuration_updated_timestamp.is_some());
        assert_eq!(alarm.ok_actions.len(), 1);
        assert!(alarm.insufficient_data_actions.is_empty());

        let trigger = alarm.trigger.as_ref().expect("trigger");
        assert_eq!(
            trigger.metric_name.as_deref(),
            Some("HTTPCode_Target_5XX_Count")
        );
        assert_eq!(trigger.statistic.as_deref(), Some("SUM"));
        assert_eq!(trigger.unit, None);
        assert_eq!(trigger.period, Some(300));
        assert_eq!(trigger.datapoints_to_alarm, Some(2));
        assert_eq!(trigger.threshold, Some(50.0));
        assert_eq!(trigger.treat_missing_data(), Some("missing"));
        assert!(trigger.metrics.is_empty());

        assert_eq!(
            alarm.dimension("LoadBalancer"),
            Some("app/prod-api/4a4513393260c7c5")
        );
        assert_eq!(alarm.function_name(), None);
        assert_eq!(
            alarm.console_url().as_deref(),
            Some(
                "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/prod-api-5xx-high"
            )
        );
    }

    #[test]
    fn parses_the_metric_math_example() {
        let alarm = Alarm::from_message(METRIC_MATH).expect("alarm JSON");
        assert_eq!(alarm.state(), Some(AlarmState::InsufficientData));
        assert_eq!(alarm.alarm_description, None);
        let trigger = alarm.trigger.as_ref().expect("trigger");
        assert_eq!(trigger.metric_name, None);
        assert!(trigger.dimensions.is_empty());
        assert_eq!(trigger.metrics.len(), 2);
        assert_eq!(trigger.metrics[0].expression.as_deref(), Some("m1*1"));
        assert_eq!(trigger.metrics[0].return_data, Some(true));
        let stat = trigger.metrics[1].metric_stat.as_ref().expect("MetricStat");
        assert_eq!(stat.stat.as_deref(), Some("Average"));
        assert_eq!(
            stat.metric.as_ref().and_then(|m| m.metric_name.as_deref()),
            Some("NetworkOut")
        );
        assert_eq!(alarm.dimension("InstanceId"), Some("TestInstance"));
        assert_eq!(alarm.region_code(), Some("eu-west-1"));
        assert_eq!(
            alarm.console_url().as_deref(),
            Some(
                "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/ec2%20network%2Fout"
            )
        );
    }

    #[test]
    fn finds_the_lambda_function_name() {
        let alarm = Alarm::from_message(
            r#"{"AlarmArn":"arn:aws-cn:cloudwatch:cn-north-1:1:alarm:throttles","AlarmName":"throttles",
                "Trigger":{"MetricName":"Throttles","Namespace":"AWS/Lambda",
                  "Dimensions":[{"value":"checkout","name":"FunctionName"}]}}"#,
        )
        .expect("alarm JSON");
        assert_eq!(alarm.function_name(), Some("checkout"));
        assert_eq!(
            alarm.console_url().as_deref(),
            Some(
                "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#alarmsV2:alarm/throttles"
            )
        );
    }

    #[test]
    fn an_almost_empty_alarm_still_parses() {
        let alarm = Alarm::from_message(r#"{"NewStateValue":"SOMETHING_NEW","OKActions":null}"#)
            .expect("alarm JSON");
        assert_eq!(alarm.state(), None);
        assert_eq!(alarm.region_code(), None);
        assert_eq!(alarm.console_url(), None);
        assert_eq!(alarm.function_name(), None);
    }

    #[test]
    fn timestamps_in_other_shapes_parse() {
        for text in [
            "2025-05-14T10:00:41.208+0000",
            "2025-05-14T10:00:41.208+00:00",
            "2025-05-14T10:00:41.208Z",
        ] {
            assert!(parse_aws_time(text).is_some(), "{text}");
        }
        assert!(parse_aws_time("14/05/25 09:55:00").is_none());
    }

    #[test]
    fn truncated_or_invalid_json_is_an_error() {
        let full = example_message();
        let truncated = &full[..full.len() / 2];
        let err = Alarm::from_message(truncated).expect_err("truncated");
        assert!(
            err.to_string()
                .starts_with("the SNS message is not CloudWatch alarm JSON")
        );
        assert!(Alarm::from_message("not json").is_err());
        assert!(Alarm::from_message(r#"{"StateChangeTime":"yesterday"}"#).is_err());
        assert!(Alarm::from_message(r#"{"Trigger":{"Period":"five"}}"#).is_err());
    }

    fn example_message() -> String {
        let body: serde_json::Value = serde_json::from_str(SNS_BODY).expect("SNS body");
        body["Message"].as_str().expect("string").to_string()
    }
}
