//! Application Auto Scaling: the targets, target-tracking policies and
//! activity history behind provisioned concurrency and cache replicas.

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use super::{AwsCloud, MAX_PAGES, classify, from_smithy, next_page, unbuildable};
use crate::cloud::{CloudError, ScalableTarget, ScalingActivity, ScalingPolicy};

/// DescribeScalingActivities takes at most 50 a page.
const ACTIVITY_PAGE: i32 = 50;

impl AwsCloud {
    pub(super) async fn describe_scalable_targets(
        &self,
        namespace: &str,
    ) -> Result<Vec<ScalableTarget>, CloudError> {
        const ACTION: &str = "application-autoscaling:DescribeScalableTargets";
        let mut targets = Vec::new();
        let mut next_token: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .autoscaling
                .describe_scalable_targets()
                .service_namespace(ServiceNamespace::from(namespace))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || namespace_what(namespace), e));
            self.observe(ACTION, &result);
            let out = result?;
            targets.extend(out.scalable_targets().iter().map(|t| ScalableTarget {
                namespace: t.service_namespace().as_str().to_owned(),
                resource_id: t.resource_id().to_owned(),
                dimension: t.scalable_dimension().as_str().to_owned(),
                min: t.min_capacity(),
                max: t.max_capacity(),
            }));
            match next_page(out.next_token()) {
                Some(t) => next_token = Some(t),
                None => break,
            }
        }
        Ok(targets)
    }

    pub(super) async fn register_target(&self, target: &ScalableTarget) -> Result<(), CloudError> {
        const ACTION: &str = "application-autoscaling:RegisterScalableTarget";
        let result = self
            .autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::from(target.namespace.as_str()))
            .resource_id(&target.resource_id)
            .scalable_dimension(ScalableDimension::from(target.dimension.as_str()))
            .min_capacity(target.min)
            .max_capacity(target.max)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    ACTION,
                    &self.region,
                    || format!("scalable target `{}`", target.resource_id),
                    e,
                )
            });
        self.observe(ACTION, &result);
        result
    }

    pub(super) async fn describe_scaling_policies(
        &self,
        namespace: &str,
    ) -> Result<Vec<ScalingPolicy>, CloudError> {
        const ACTION: &str = "application-autoscaling:DescribeScalingPolicies";
        let mut policies = Vec::new();
        let mut next_token: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .autoscaling
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::from(namespace))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || namespace_what(namespace), e));
            self.observe(ACTION, &result);
            let out = result?;
            policies.extend(out.scaling_policies().iter().map(|p| {
                let tracking = p.target_tracking_scaling_policy_configuration();
                ScalingPolicy {
                    name: p.policy_name().to_owned(),
                    namespace: p.service_namespace().as_str().to_owned(),
                    resource_id: p.resource_id().to_owned(),
                    dimension: p.scalable_dimension().as_str().to_owned(),
                    policy_type: p.policy_type().as_str().to_owned(),
                    target_value: tracking.map(|t| t.target_value()),
                    predefined_metric: tracking
                        .and_then(|t| t.predefined_metric_specification())
                        .map(|m| m.predefined_metric_type().as_str().to_owned()),
                    scale_in_cooldown: tracking.and_then(|t| t.scale_in_cooldown()),
                    scale_out_cooldown: tracking.and_then(|t| t.scale_out_cooldown()),
                    disable_scale_in: tracking.and_then(|t| t.disable_scale_in()),
                    alarms: p
                        .alarms()
                        .iter()
                        .map(|a| a.alarm_name().to_owned())
                        .collect(),
                }
            }));
            match next_page(out.next_token()) {
                Some(t) => next_token = Some(t),
                None => break,
            }
        }
        Ok(policies)
    }

    /// Always target tracking: that is the only kind the runbooks create or
    /// restore, and AWS then owns the alarms.
    pub(super) async fn put_target_tracking_policy(
        &self,
        policy: &ScalingPolicy,
    ) -> Result<(), CloudError> {
        const ACTION: &str = "application-autoscaling:PutScalingPolicy";
        let predefined = policy
            .predefined_metric
            .as_deref()
            .map(|m| {
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::from(m))
                    .build()
            })
            .transpose()
            .map_err(|e| unbuildable(ACTION, e))?;
        let tracking = TargetTrackingScalingPolicyConfiguration::builder()
            .set_target_value(policy.target_value)
            .set_predefined_metric_specification(predefined)
            .set_scale_in_cooldown(policy.scale_in_cooldown)
            .set_scale_out_cooldown(policy.scale_out_cooldown)
            .set_disable_scale_in(policy.disable_scale_in)
            .build()
            .map_err(|e| unbuildable(ACTION, e))?;
        let result = self
            .autoscaling
            .put_scaling_policy()
            .policy_name(&policy.name)
            .service_namespace(ServiceNamespace::from(policy.namespace.as_str()))
            .resource_id(&policy.resource_id)
            .scalable_dimension(ScalableDimension::from(policy.dimension.as_str()))
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(tracking)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    ACTION,
                    &self.region,
                    || format!("scalable target `{}`", policy.resource_id),
                    e,
                )
            });
        self.observe(ACTION, &result);
        result
    }

    pub(super) async fn describe_scaling_activities(
        &self,
        namespace: &str,
        max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError> {
        const ACTION: &str = "application-autoscaling:DescribeScalingActivities";
        let wanted = usize::try_from(max).unwrap_or(0);
        let mut activities = Vec::new();
        let mut next_token: Option<String> = None;
        for _page in 0..MAX_PAGES {
            if activities.len() >= wanted {
                break;
            }
            let remaining = i32::try_from(wanted - activities.len()).unwrap_or(ACTIVITY_PAGE);
            let result = self
                .autoscaling
                .describe_scaling_activities()
                .service_namespace(ServiceNamespace::from(namespace))
                .max_results(remaining.min(ACTIVITY_PAGE))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || namespace_what(namespace), e));
            self.observe(ACTION, &result);
            let out = result?;
            activities.extend(out.scaling_activities().iter().filter_map(|a| {
                Some(ScalingActivity {
                    id: a.activity_id().to_owned(),
                    resource_id: a.resource_id().to_owned(),
                    description: a.description().to_owned(),
                    cause: a.cause().to_owned(),
                    status: a.status_code().as_str().to_owned(),
                    start: from_smithy(a.start_time())?,
                })
            }));
            match next_page(out.next_token()) {
                Some(t) => next_token = Some(t),
                None => break,
            }
        }
        // AWS sends newest first already; sorting keeps that promise even
        // when pages overlap in time.
        activities.sort_by_key(|a| std::cmp::Reverse(a.start));
        activities.truncate(wanted);
        Ok(activities)
    }
}

fn namespace_what(namespace: &str) -> String {
    format!("Application Auto Scaling namespace `{namespace}`")
}

#[cfg(test)]
mod tests {
    use aws_sdk_applicationautoscaling::Client;
    use aws_smithy_mocks::mock;
    use chrono::{TimeZone, Utc};

    use super::super::mocks;
    use crate::cloud::{Cloud, CloudError, ScalingActivity};

    // Covered by the SDK's mocks because moto 5.2.5 has no
    // DescribeScalingActivities. Body shaped as the Application Auto Scaling
    // API reference's Lambda example (AWS JSON 1.1, epoch-second times).
    #[tokio::test]
    async fn scaling_activities_newest_first_and_at_most_max() {
        let rule = mock!(Client::describe_scaling_activities)
            .match_requests(|r| {
                r.service_namespace().map(|n| n.as_str()) == Some("lambda")
                    && r.max_results() == Some(2)
            })
            .then_http_response(|| {
                mocks::json(
                    200,
                    r#"{
                      "ScalingActivities": [
                        {
                          "ActivityId": "6d2bf4ed-6eb5-4218-b4bb-f81fe6d7446e",
                          "ServiceNamespace": "lambda",
                          "ResourceId": "function:persona-api:live",
                          "ScalableDimension": "lambda:function:ProvisionedConcurrency",
                          "Description": "Setting desired concurrency to 30.",
                          "Cause": "monitor alarm TargetTracking-function:persona-api:live-AlarmHigh-d4f0770c in state ALARM triggered policy persona-tracking",
                          "StartTime": 1795813200.5,
                          "EndTime": 1795813245.155,
                          "StatusCode": "Successful",
                          "StatusMessage": "Successfully set desired concurrency to 30. Change successfully fulfilled by lambda."
                        },
                        {
                          "ActivityId": "5a1e3e53-0000-4000-8000-000000000001",
                          "ServiceNamespace": "lambda",
                          "ResourceId": "function:persona-api:live",
                          "ScalableDimension": "lambda:function:ProvisionedConcurrency",
                          "Description": "Setting desired concurrency to 10.",
                          "Cause": "minimum capacity was set to 10",
                          "StartTime": 1795809600,
                          "StatusCode": "Failed",
                          "StatusMessage": "Failed to set provisioned concurrency"
                        }
                      ],
                      "NextToken": "more-but-not-wanted"
                    }"#,
                )
            });
        let (cloud, _) = mocks::cloud(|c| c.autoscaling = mocks::autoscaling(&[&rule]));
        let got = cloud.scaling_activities("lambda", 2).await;
        let at = |s: i64, ms: u32| {
            Utc.timestamp_opt(s, ms * 1_000_000)
                .single()
                .unwrap_or_default()
        };
        assert_eq!(
            got,
            Ok(vec![
                ScalingActivity {
                    id: "6d2bf4ed-6eb5-4218-b4bb-f81fe6d7446e".into(),
                    resource_id: "function:persona-api:live".into(),
                    description: "Setting desired concurrency to 30.".into(),
                    cause: "monitor alarm TargetTracking-function:persona-api:live-AlarmHigh-d4f0770c in state ALARM triggered policy persona-tracking".into(),
                    status: "Successful".into(),
                    start: at(1_795_813_200, 500),
                },
                ScalingActivity {
                    id: "5a1e3e53-0000-4000-8000-000000000001".into(),
                    resource_id: "function:persona-api:live".into(),
                    description: "Setting desired concurrency to 10.".into(),
                    cause: "minimum capacity was set to 10".into(),
                    status: "Failed".into(),
                    start: at(1_795_809_600, 0),
                },
            ])
        );
        assert_eq!(rule.num_calls(), 1, "no second page once max is reached");
    }

    // Covered by the SDK's mocks: moto never throttles. Three answers of
    // ThrottlingException (AWS JSON 1.1 error shape); the SDK must retry
    // them all, then the user gets the throttling sentence.
    #[tokio::test]
    async fn throttling_is_retried_then_explained() {
        let rule = mock!(Client::describe_scaling_activities)
            .sequence()
            .http_response(|| mocks::json11_error(400, "ThrottlingException", "Rate exceeded"))
            .times(3)
            .build();
        let (cloud, metrics) = mocks::cloud(|c| c.autoscaling = mocks::autoscaling(&[&rule]));
        let got = cloud.scaling_activities("lambda", 5).await;
        assert_eq!(
            got,
            Err(CloudError::Throttled {
                action: "application-autoscaling:DescribeScalingActivities".into()
            })
        );
        assert_eq!(rule.num_calls(), 3, "the SDK tried three times");
        assert!(metrics.render().contains(
            r#"operation="application-autoscaling:DescribeScalingActivities",outcome="throttled"} 1"#
        ));
    }

    #[tokio::test]
    async fn no_activities_asked_for_means_no_call() {
        let (cloud, _) = mocks::cloud(|c| c.autoscaling = mocks::autoscaling(&[]));
        assert_eq!(cloud.scaling_activities("lambda", 0).await, Ok(vec![]));
    }
}
