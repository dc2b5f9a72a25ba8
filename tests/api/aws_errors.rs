//! AWS failures reach the user as a sentence they can act on. moto does not
//! deny or throttle, so a small stand-in answers every call as Lambda's
//! REST-JSON protocol does for AccessDenied and throttling (bodies and
//! headers as in the Lambda API reference) and counts the attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::any;

use crate::support::app::{Options, message_text, spawn_app};

async fn faulty_aws(
    status: StatusCode,
    error_type: &'static str,
    message: &'static str,
) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(any(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                status,
                [
                    ("x-amzn-errortype", error_type),
                    ("content-type", "application/json"),
                    ("x-amzn-requestid", "8a0b5f3c-0000-4000-8000-000000000000"),
                ],
                format!(r#"{{"Type":"User","message":"{message}"}}"#),
            )
                .into_response()
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_names_the_missing_permission() {
    let (url, hits) = faulty_aws(
        StatusCode::FORBIDDEN,
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/scalebot/bot is not authorized to perform: lambda:GetFunctionConcurrency",
    )
    .await;
    let app = spawn_app(Options {
        aws_endpoint: Some(url),
        ..Options::default()
    })
    .await;
    app.command("throttles persona-api", "U1", "C0DENIED").await;
    let post = app
        .slack
        .wait_for(30, "the error", |s| s.posts("C0DENIED").into_iter().next())
        .await;
    let text = message_text(&post);
    assert!(
        text.contains("not allowed to call lambda:GetFunctionConcurrency"),
        "{text}"
    );
    assert!(
        !text.contains("SdkError") && !text.contains("ServiceError"),
        "no debug dump: {text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a denial is not retried");
    assert_eq!(
        app.finished_outcome("throttles persona-api").await,
        "failed"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_with_backoff_then_explained() {
    let (url, hits) = faulty_aws(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequestsException",
        "Rate exceeded",
    )
    .await;
    let app = spawn_app(Options {
        aws_endpoint: Some(url),
        max_attempts: 3,
        ..Options::default()
    })
    .await;
    app.command("throttles persona-api", "U1", "C0THROTTLED")
        .await;
    let post = app
        .slack
        .wait_for(60, "the error", |s| {
            s.posts("C0THROTTLED").into_iter().next()
        })
        .await;
    let text = message_text(&post);
    assert!(
        text.contains("AWS is throttling lambda:GetFunctionConcurrency requests"),
        "{text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the SDK tried three times");
    app.stop().await;
}
