//! CloudWatch alarm states: what the scaling policies are reacting to.

use aws_sdk_cloudwatch::types::AlarmType;

use super::{AwsCloud, MAX_PAGES, classify, next_page};
use crate::cloud::{AlarmState, CloudError};

/// DescribeAlarms takes at most 100 names a request.
const NAMES_PER_REQUEST: usize = 100;

impl AwsCloud {
    /// Alarms that do not exist are simply absent from the answer; the
    /// result follows the order of `names`.
    pub(super) async fn describe_alarms(
        &self,
        names: &[String],
    ) -> Result<Vec<AlarmState>, CloudError> {
        const ACTION: &str = "cloudwatch:DescribeAlarms";
        let mut states = Vec::new();
        // No names would mean every alarm in the account.
        for chunk in names.chunks(NAMES_PER_REQUEST) {
            let mut next_token: Option<String> = None;
            for _page in 0..MAX_PAGES {
                let result = self
                    .cloudwatch
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    // Without AlarmTypes AWS leaves composite alarms out.
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .set_next_token(next_token.take())
                    .send()
                    .await
                    .map_err(|e| classify(ACTION, &self.region, || "the alarms".into(), e));
                self.observe(ACTION, &result);
                let out = result?;
                states.extend(out.metric_alarms().iter().map(|a| {
                    AlarmState {
                        name: a.alarm_name().unwrap_or_default().to_owned(),
                        state: a
                            .state_value()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        reason: a.state_reason().unwrap_or_default().to_owned(),
                    }
                }));
                states.extend(out.composite_alarms().iter().map(|a| {
                    AlarmState {
                        name: a.alarm_name().unwrap_or_default().to_owned(),
                        state: a
                            .state_value()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        reason: a.state_reason().unwrap_or_default().to_owned(),
                    }
                }));
                match next_page(out.next_token()) {
                    Some(t) => next_token = Some(t),
                    None => break,
                }
            }
        }
        states.sort_by_key(|s| names.iter().position(|n| *n == s.name));
        Ok(states)
    }
}
