//! A stand-in for AWS operations moto 5.2.5 lacks, in front of the tests'
//! AWS endpoint (moto behind the CloudWatch translator). It answers the
//! requests it is given an answer for in the operation's own wire format
//! (status, content type and body as the AWS API reference shows them) and
//! passes every other request through untouched, so the bot's SDK, signing
//! and parsing are the real ones. Each test names what it stands in for.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// One operation answered here instead of upstream.
#[derive(Clone)]
pub struct Answer {
    pub method: Method,
    /// The request path without its query, e.g. `/2016-08-19/account-settings`.
    pub path: &'static str,
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// Lambda's `GetAccountSettings` (REST-JSON), as its API reference shows it.
pub fn lambda_account_settings(limit: i32, unreserved: i32) -> Answer {
    Answer {
        method: Method::GET,
        path: "/2016-08-19/account-settings",
        status: 200,
        content_type: "application/json",
        body: serde_json::json!({
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800_i64,
                "CodeSizeUnzipped": 262_144_000,
                "CodeSizeZipped": 52_428_800,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": unreserved
            },
            "AccountUsage": { "TotalCodeSize": 217_910, "FunctionCount": 5 }
        })
        .to_string(),
    }
}

#[derive(Clone)]
struct Ctx {
    upstream: String,
    http: reqwest::Client,
    answers: Arc<Vec<Answer>>,
    answered: Arc<Mutex<Vec<String>>>,
}

pub struct StandIn {
    pub url: String,
    answered: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    /// The paths answered here so far, in order.
    pub fn answered(&self) -> Vec<String> {
        self.answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Starts a stand-in in front of `upstream` on the test's runtime.
pub async fn start(upstream: String, answers: Vec<Answer>) -> StandIn {
    let answered = Arc::new(Mutex::new(Vec::new()));
    let ctx = Ctx {
        upstream,
        http: reqwest::Client::new(),
        answers: Arc::new(answers),
        answered: answered.clone(),
    };
    let app = Router::new().fallback(handle).with_state(ctx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the stand-in");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    StandIn { url, answered }
}

async fn handle(State(ctx): State<Ctx>, request: Request) -> Response {
    let incoming = match super::forward::read(request, 16 * 1024 * 1024).await {
        Ok(incoming) => incoming,
        Err(refused) => return refused,
    };
    let method = &incoming.parts.method;
    let path = incoming.parts.uri.path().trim_end_matches('/');
    if let Some(a) = ctx
        .answers
        .iter()
        .find(|a| a.method == method && a.path == path)
    {
        ctx.answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_owned());
        return (
            StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK),
            [
                ("content-type", a.content_type),
                ("x-amzn-requestid", "5c1f0e2a-0000-4000-8000-000000000000"),
            ],
            a.body.clone(),
        )
            .into_response();
    }
    match incoming.to(&ctx.http, &ctx.upstream).send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            super::forward::answer(status, &headers, body)
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
