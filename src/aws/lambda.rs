//! Lambda concurrency: a function's reserved share and the account's pool.

use super::{AwsCloud, classify, incomplete_answer};
use crate::cloud::{AccountConcurrency, CloudError};
use crate::domain::FunctionName;

impl AwsCloud {
    pub(super) async fn get_function_concurrency(
        &self,
        function: &FunctionName,
    ) -> Result<Option<i32>, CloudError> {
        const ACTION: &str = "lambda:GetFunctionConcurrency";
        let result = self
            .lambda
            .get_function_concurrency()
            .function_name(function.as_str())
            .send()
            .await
            .map_err(|e| classify(ACTION, &self.region, || function_what(function), e));
        self.observe(ACTION, &result);
        Ok(result?.reserved_concurrent_executions())
    }

    pub(super) async fn put_function_concurrency(
        &self,
        function: &FunctionName,
        value: i32,
    ) -> Result<(), CloudError> {
        const ACTION: &str = "lambda:PutFunctionConcurrency";
        let result = self
            .lambda
            .put_function_concurrency()
            .function_name(function.as_str())
            .reserved_concurrent_executions(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(ACTION, &self.region, || function_what(function), e));
        self.observe(ACTION, &result);
        result
    }

    pub(super) async fn delete_function_concurrency(
        &self,
        function: &FunctionName,
    ) -> Result<(), CloudError> {
        const ACTION: &str = "lambda:DeleteFunctionConcurrency";
        let result = self
            .lambda
            .delete_function_concurrency()
            .function_name(function.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(ACTION, &self.region, || function_what(function), e));
        self.observe(ACTION, &result);
        result
    }

    /// The pool every function without a reservation shares: what a new
    /// reservation would be carved out of.
    pub(super) async fn get_account_settings(&self) -> Result<AccountConcurrency, CloudError> {
        const ACTION: &str = "lambda:GetAccountSettings";
        let result = self
            .lambda
            .get_account_settings()
            .send()
            .await
            .map_err(|e| {
                classify(
                    ACTION,
                    &self.region,
                    || "the Lambda account settings".into(),
                    e,
                )
            })
            .and_then(|out| {
                let limit = out
                    .account_limit()
                    .ok_or_else(|| incomplete_answer(ACTION, "the account limit"))?;
                let unreserved = limit.unreserved_concurrent_executions().ok_or_else(|| {
                    incomplete_answer(ACTION, "the unreserved concurrent executions")
                })?;
                Ok(AccountConcurrency {
                    limit: limit.concurrent_executions(),
                    unreserved,
                })
            });
        self.observe(ACTION, &result);
        result
    }
}

pub(super) fn function_what(function: &FunctionName) -> String {
    format!("Lambda function `{function}`")
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::mock;

    use super::super::mocks;
    use crate::cloud::{AccountConcurrency, Cloud, CloudError};

    // Covered by the SDK's mocks because moto 5.2.5 has no
    // GetAccountSettings. Body as in the Lambda API reference's example.
    #[tokio::test]
    async fn account_concurrency_reads_limit_and_unreserved() {
        let rule = mock!(Client::get_account_settings).then_http_response(|| {
            mocks::json(
                200,
                r#"{
                  "AccountLimit": {
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "ConcurrentExecutions": 1000,
                    "TotalCodeSize": 80530636800,
                    "UnreservedConcurrentExecutions": 870
                  },
                  "AccountUsage": { "FunctionCount": 4, "TotalCodeSize": 9426 }
                }"#,
            )
        });
        let (cloud, metrics) = mocks::cloud(|c| c.lambda = mocks::lambda(&[&rule]));
        let got = cloud.account_concurrency().await;
        assert_eq!(
            got,
            Ok(AccountConcurrency {
                limit: 1000,
                unreserved: 870
            })
        );
        assert_eq!(rule.num_calls(), 1);
        assert!(
            metrics
                .render()
                .contains(r#"operation="lambda:GetAccountSettings",outcome="ok""#),
            "{}",
            metrics.render()
        );
    }

    // Covered by the SDK's mocks: moto never denies a call. Lambda's
    // REST-JSON error shape: the type in `x-amzn-errortype`, 403.
    #[tokio::test]
    async fn a_denied_call_names_the_iam_action_and_is_not_retried() {
        let rule = mock!(Client::get_account_settings).then_http_response(|| {
            mocks::rest_json_error(
                403,
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/scalebot/bot is not authorized to perform: lambda:GetAccountSettings",
            )
        });
        let (cloud, metrics) = mocks::cloud(|c| c.lambda = mocks::lambda(&[&rule]));
        let got = cloud.account_concurrency().await;
        assert_eq!(
            got,
            Err(CloudError::AccessDenied {
                action: "lambda:GetAccountSettings".into()
            })
        );
        assert_eq!(rule.num_calls(), 1, "a denial is not retried");
        assert!(
            metrics
                .render()
                .contains(r#"operation="lambda:GetAccountSettings",outcome="access_denied""#)
        );
    }

    // Covered by the SDK's mocks: an answer without the limit must not
    // turn into a made-up zero.
    #[tokio::test]
    async fn an_answer_without_the_limit_is_an_error_not_a_zero() {
        let rule = mock!(Client::get_account_settings)
            .then_http_response(|| mocks::json(200, r#"{"AccountUsage":{"FunctionCount":4}}"#));
        let (cloud, _) = mocks::cloud(|c| c.lambda = mocks::lambda(&[&rule]));
        assert!(matches!(
            cloud.account_concurrency().await,
            Err(CloudError::Unreachable { .. })
        ));
    }
}
