//! Lambda provisioned concurrency: pre-warmed environments on a version or
//! alias, the lever for cold starts.

use super::lambda::function_what;
use super::{AwsCloud, MAX_PAGES, classify, next_page};
use crate::cloud::{CloudError, ProvisionedConfig};
use crate::domain::FunctionName;

impl AwsCloud {
    pub(super) async fn list_provisioned_configs(
        &self,
        function: &FunctionName,
    ) -> Result<Vec<ProvisionedConfig>, CloudError> {
        const ACTION: &str = "lambda:ListProvisionedConcurrencyConfigs";
        let mut configs = Vec::new();
        let mut marker: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .lambda
                .list_provisioned_concurrency_configs()
                .function_name(function.as_str())
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || function_what(function), e));
            self.observe(ACTION, &result);
            let out = result?;
            configs.extend(out.provisioned_concurrency_configs().iter().map(|c| {
                ProvisionedConfig {
                    qualifier: c.function_arn().map(qualifier_of).unwrap_or_default(),
                    requested: c.requested_provisioned_concurrent_executions().unwrap_or(0),
                    allocated: c.allocated_provisioned_concurrent_executions().unwrap_or(0),
                    status: c
                        .status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                }
            }));
            match next_page(out.next_marker()) {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        Ok(configs)
    }

    pub(super) async fn put_provisioned_config(
        &self,
        function: &FunctionName,
        qualifier: &str,
        value: i32,
    ) -> Result<(), CloudError> {
        const ACTION: &str = "lambda:PutProvisionedConcurrencyConfig";
        let result = self
            .lambda
            .put_provisioned_concurrency_config()
            .function_name(function.as_str())
            .qualifier(qualifier)
            .provisioned_concurrent_executions(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    ACTION,
                    &self.region,
                    || qualified_what(function, qualifier),
                    e,
                )
            });
        self.observe(ACTION, &result);
        result
    }

    pub(super) async fn delete_provisioned_config(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<(), CloudError> {
        const ACTION: &str = "lambda:DeleteProvisionedConcurrencyConfig";
        let result = self
            .lambda
            .delete_provisioned_concurrency_config()
            .function_name(function.as_str())
            .qualifier(qualifier)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    ACTION,
                    &self.region,
                    || {
                        format!(
                            "provisioned concurrency on {}",
                            qualified_what(function, qualifier)
                        )
                    },
                    e,
                )
            });
        self.observe(ACTION, &result);
        result
    }
}

fn qualified_what(function: &FunctionName, qualifier: &str) -> String {
    format!("Lambda function `{function}:{qualifier}`")
}

/// The list item carries no qualifier of its own; it is the eighth field
/// of the qualified ARN `arn:aws:lambda:REGION:ACCOUNT:function:NAME:QUALIFIER`.
fn qualifier_of(arn: &str) -> String {
    arn.split(':').nth(7).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::mock;

    use super::super::mocks;
    use super::qualifier_of;
    use crate::cloud::{Cloud, CloudError, ProvisionedConfig};
    use crate::domain::FunctionName;

    fn persona() -> FunctionName {
        let Ok(f) = FunctionName::parse("persona-api") else {
            panic!("a valid name");
        };
        f
    }

    #[test]
    fn the_qualifier_is_the_arn_suffix() {
        assert_eq!(
            qualifier_of("arn:aws:lambda:eu-central-1:123456789012:function:persona-api:live"),
            "live"
        );
        assert_eq!(
            qualifier_of("arn:aws:lambda:eu-central-1:123456789012:function:persona-api"),
            ""
        );
    }

    // Covered by the SDK's mocks because moto 5.2.5 has no provisioned
    // concurrency configs. Bodies follow the Lambda API reference for
    // ListProvisionedConcurrencyConfigs; the first page ends in NextMarker,
    // which the second request must send back as Marker.
    #[tokio::test]
    async fn provisioned_configs_follow_next_marker_across_pages() {
        let page1 = mock!(Client::list_provisioned_concurrency_configs)
            .match_requests(|r| r.function_name() == Some("persona-api") && r.marker().is_none())
            .then_http_response(|| {
                mocks::json(
                    200,
                    r#"{
                      "ProvisionedConcurrencyConfigs": [{
                        "FunctionArn": "arn:aws:lambda:eu-central-1:123456789012:function:persona-api:live",
                        "RequestedProvisionedConcurrentExecutions": 50,
                        "AvailableProvisionedConcurrentExecutions": 50,
                        "AllocatedProvisionedConcurrentExecutions": 50,
                        "Status": "READY",
                        "LastModified": "2026-11-20T09:18:03+0000"
                      }],
                      "NextMarker": "page-2"
                    }"#,
                )
            });
        let page2 = mock!(Client::list_provisioned_concurrency_configs)
            .match_requests(|r| {
                r.function_name() == Some("persona-api") && r.marker() == Some("page-2")
            })
            .then_http_response(|| {
                mocks::json(
                    200,
                    r#"{
                      "ProvisionedConcurrencyConfigs": [{
                        "FunctionArn": "arn:aws:lambda:eu-central-1:123456789012:function:persona-api:7",
                        "RequestedProvisionedConcurrentExecutions": 20,
                        "AvailableProvisionedConcurrentExecutions": 0,
                        "AllocatedProvisionedConcurrentExecutions": 0,
                        "Status": "IN_PROGRESS",
                        "LastModified": "2026-11-27T21:00:00+0000"
                      }]
                    }"#,
                )
            });
        let (cloud, metrics) = mocks::cloud(|c| c.lambda = mocks::lambda(&[&page1, &page2]));
        let got = cloud.provisioned_configs(&persona()).await;
        assert_eq!(
            got,
            Ok(vec![
                ProvisionedConfig {
                    qualifier: "live".into(),
                    requested: 50,
                    allocated: 50,
                    status: "READY".into(),
                },
                ProvisionedConfig {
                    qualifier: "7".into(),
                    requested: 20,
                    allocated: 0,
                    status: "IN_PROGRESS".into(),
                },
            ])
        );
        assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
        assert!(metrics.render().contains(
            r#"scalebot_aws_calls_total{operation="lambda:ListProvisionedConcurrencyConfigs",outcome="ok"} 2"#
        ));
    }

    // Covered by the SDK's mocks because moto 5.2.5 has no provisioned
    // concurrency configs. AWS answers 202 with the config it accepted.
    #[tokio::test]
    async fn put_provisioned_sends_qualifier_and_value() {
        let rule = mock!(Client::put_provisioned_concurrency_config)
            .match_requests(|r| {
                r.function_name() == Some("persona-api")
                    && r.qualifier() == Some("live")
                    && r.provisioned_concurrent_executions() == Some(75)
            })
            .then_http_response(|| {
                mocks::json(
                    202,
                    r#"{
                      "RequestedProvisionedConcurrentExecutions": 75,
                      "AvailableProvisionedConcurrentExecutions": 0,
                      "AllocatedProvisionedConcurrentExecutions": 0,
                      "Status": "IN_PROGRESS",
                      "LastModified": "2026-11-27T21:00:00+0000"
                    }"#,
                )
            });
        let (cloud, _) = mocks::cloud(|c| c.lambda = mocks::lambda(&[&rule]));
        assert_eq!(cloud.put_provisioned(&persona(), "live", 75).await, Ok(()));
        assert_eq!(rule.num_calls(), 1);
    }

    // Covered by the SDK's mocks because moto 5.2.5 has no provisioned
    // concurrency configs. A delete answers 204 with no body; a second one
    // gets ProvisionedConcurrencyConfigNotFoundException (404), which must
    // read as "does not exist", not as a refusal.
    #[tokio::test]
    async fn delete_provisioned_then_a_missing_config_is_not_found() {
        let deleted = mock!(Client::delete_provisioned_concurrency_config)
            .match_requests(|r| {
                r.function_name() == Some("persona-api") && r.qualifier() == Some("live")
            })
            .then_http_response(|| mocks::json(204, ""));
        let missing =
            mock!(Client::delete_provisioned_concurrency_config).then_http_response(|| {
                mocks::rest_json_error(
                    404,
                    "ProvisionedConcurrencyConfigNotFoundException",
                    "No Provisioned Concurrency Config found for this function",
                )
            });
        let (cloud, _) = mocks::cloud(|c| c.lambda = mocks::lambda(&[&deleted, &missing]));
        assert_eq!(cloud.delete_provisioned(&persona(), "live").await, Ok(()));
        let again = cloud.delete_provisioned(&persona(), "live").await;
        assert_eq!(
            again,
            Err(CloudError::NotFound {
                what: "provisioned concurrency on Lambda function `persona-api:live`".into(),
                region: mocks::REGION.into(),
            })
        );
        assert_eq!(missing.num_calls(), 1, "not found is not retried");
    }
}
