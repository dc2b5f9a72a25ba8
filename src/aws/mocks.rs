//! SDK clients answered by `aws-smithy-mocks`, for the calls moto 5.2.5
//! does not implement. Rules answer with HTTP responses shaped as in the
//! AWS API references, so the SDK's real deserializers and retry
//! classifiers run; only the network is replaced.
//!
//! `mock_client!` needs each SDK crate's `test-util` feature, which would
//! rebuild six large crates a second time; building the clients from a
//! test `SdkConfig` plus the crate's interceptor gives the same thing.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

use super::{AwsCloud, Clients};
use crate::metrics::Metrics;

pub(crate) const REGION: &str = "eu-central-1";

/// Three attempts as in production, with millisecond backoff so that the
/// retry tests stay fast.
fn shared() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDMOCK", "mock", None, None, "mocks",
        )))
        .http_client(create_mock_http_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
        .build()
}

/// Rules are used in order, each once unless built as a sequence.
fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::Sequential),
        |i, r| i.with_rule(r),
    )
}

pub(crate) fn lambda(rules: &[&Rule]) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&shared())
            .interceptor(interceptor(rules))
            .build(),
    )
}

pub(crate) fn autoscaling(rules: &[&Rule]) -> aws_sdk_applicationautoscaling::Client {
    aws_sdk_applicationautoscaling::Client::from_conf(
        aws_sdk_applicationautoscaling::config::Builder::from(&shared())
            .interceptor(interceptor(rules))
            .build(),
    )
}

/// An `AwsCloud` whose clients all talk to the mock HTTP client (which
/// answers 418 to anything no rule covers); `wire` swaps in the clients
/// under test.
pub(crate) fn cloud(wire: impl FnOnce(&mut Clients)) -> (AwsCloud, Arc<Metrics>) {
    let mut clients = Clients::new(&shared());
    wire(&mut clients);
    let metrics = Arc::new(Metrics::default());
    (
        AwsCloud::from_clients(clients, REGION.into(), metrics.clone()),
        metrics,
    )
}

fn response(status: u16, body: &str, headers: &[(&'static str, &'static str)]) -> HttpResponse {
    let Ok(status) = StatusCode::try_from(status) else {
        panic!("{status} is not an HTTP status");
    };
    let mut resp = HttpResponse::new(status, SdkBody::from(body.to_owned()));
    resp.headers_mut()
        .insert("x-amzn-requestid", "8a0b5f3c-0000-4000-8000-000000000000");
    for (k, v) in headers {
        resp.headers_mut().insert(*k, *v);
    }
    resp
}

/// A successful JSON answer (REST-JSON or AWS JSON 1.1 alike).
pub(crate) fn json(status: u16, body: &str) -> HttpResponse {
    response(status, body, &[("content-type", "application/json")])
}

/// An error as Lambda's REST-JSON protocol sends it.
pub(crate) fn rest_json_error(
    status: u16,
    error_type: &'static str,
    message: &str,
) -> HttpResponse {
    let body = serde_json::json!({"Type": "User", "message": message}).to_string();
    response(
        status,
        &body,
        &[
            ("content-type", "application/json"),
            ("x-amzn-errortype", error_type),
        ],
    )
}

/// An error as the AWS JSON 1.1 protocol (Application Auto Scaling, Cost
/// Explorer) sends it.
pub(crate) fn json11_error(status: u16, error_type: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({"__type": error_type, "message": message}).to_string();
    response(
        status,
        &body,
        &[("content-type", "application/x-amz-json-1.1")],
    )
}
