//! Recycling a function's execution environments without a deploy.
//!
//! Lambda starts fresh environments whenever the configuration changes, so
//! writing one marker variable is enough; the code must stay exactly what
//! was deployed, which is why this never calls `UpdateFunctionCode`.

use std::collections::HashMap;

use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::Environment;
use chrono::{SecondsFormat, Utc};

use super::lambda::function_what;
use super::{AwsCloud, classify};
use crate::cloud::{CloudError, RestartOutcome};
use crate::domain::FunctionName;

/// The variable whose change forces the new environments.
pub(crate) const MARKER_VARIABLE: &str = "SCALEBOT_RESTARTED_AT";

impl AwsCloud {
    pub(super) async fn restart(
        &self,
        function: &FunctionName,
    ) -> Result<RestartOutcome, CloudError> {
        const ACTION: &str = "lambda:UpdateFunctionConfiguration";
        let before = self.function_configuration(function).await?;
        let env = before.environment();
        // Without lambda's permission to decrypt, AWS hides the variables
        // and reports an error instead; writing back only the marker would
        // wipe them.
        if let Some(error) = env.and_then(|e| e.error()) {
            return Err(CloudError::Rejected {
                action: ACTION.into(),
                message: format!(
                    "the function's environment variables could not be read ({}: {}), and a restart would lose them",
                    error.error_code().unwrap_or("no code"),
                    error.message().unwrap_or("no message"),
                ),
            });
        }
        let mut variables: HashMap<String, String> =
            env.and_then(|e| e.variables()).cloned().unwrap_or_default();
        // Milliseconds, so that two restarts in one second still differ.
        let marker = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        variables.insert(MARKER_VARIABLE.into(), marker.clone());
        let result = self
            .lambda
            .update_function_configuration()
            .function_name(function.as_str())
            .environment(
                Environment::builder()
                    .set_variables(Some(variables))
                    .build(),
            )
            // A deploy that lands between the read and this write would be
            // overwritten with stale variables; the revision makes AWS refuse
            // instead (PreconditionFailedException).
            .set_revision_id(before.revision_id().map(str::to_owned))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(ACTION, &self.region, || function_what(function), e));
        self.observe(ACTION, &result);
        result?;
        let after = self.function_configuration(function).await?;
        Ok(RestartOutcome {
            code_sha256_before: before.code_sha256().unwrap_or_default().to_owned(),
            code_sha256_after: after.code_sha256().unwrap_or_default().to_owned(),
            marker,
        })
    }

    async fn function_configuration(
        &self,
        function: &FunctionName,
    ) -> Result<GetFunctionConfigurationOutput, CloudError> {
        const ACTION: &str = "lambda:GetFunctionConfiguration";
        let result = self
            .lambda
            .get_function_configuration()
            .function_name(function.as_str())
            .send()
            .await
            .map_err(|e| classify(ACTION, &self.region, || function_what(function), e));
        self.observe(ACTION, &result);
        result
    }
}
