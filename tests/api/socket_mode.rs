//! Socket Mode: the fake Slack answers `apps.connections.open` with a
//! loopback WebSocket, says hello, and delivers slash-command envelopes.

use serde_json::json;

use crate::support::app::{Options, message_text, spawn_app};
use crate::support::moto;

fn envelope(id: &str, text: &str, channel: &str) -> serde_json::Value {
    json!({
        "envelope_id": id,
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0001",
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "ops",
            "user_id": "U0SOCKET",
            "user_name": "oncall",
            "command": "/scale",
            "text": text,
            "api_app_id": "A123456",
            "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.com/commands/1234/5678",
            "trigger_id": "13345224609.738474920.8088930838d88f008e0"
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_over_socket_mode_are_acked_and_answered() {
    let aws = moto::url();
    moto::create_function(&aws, "socket-fn", Some(20)).await;
    let app = spawn_app(Options {
        http: false,
        socket_mode: true,
        ..Options::default()
    })
    .await;
    assert!(
        !app.slack.calls("apps.connections.open").is_empty(),
        "the bot asked for a socket URL"
    );

    app.slack
        .push_envelope(envelope("env-help", "help", "C0SOCK"));
    let ack = app
        .slack
        .wait_for(20, "the help ack", |s| {
            s.acks()
                .into_iter()
                .find(|a| a["envelope_id"] == "env-help")
        })
        .await;
    let payload = message_text(&ack["payload"]);
    assert!(
        payload.contains("/scale throttles <function>"),
        "help in the ack payload: {ack}"
    );

    app.slack
        .push_envelope(envelope("env-thr", "throttles socket-fn", "C0SOCK"));
    app.slack
        .wait_for(20, "the throttles ack", |s| {
            s.acks().into_iter().find(|a| a["envelope_id"] == "env-thr")
        })
        .await;
    let post = app
        .slack
        .wait_for(30, "the posted summary", |s| {
            s.posts("C0SOCK").into_iter().next()
        })
        .await;
    assert!(
        message_text(&post).contains("Throttles: socket-fn"),
        "{post}"
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a.command == "throttles socket-fn" && a.actor == "U0SOCKET")
    );
    app.stop().await;
}
