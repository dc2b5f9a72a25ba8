//! A button that is drawn is a button that is accepted: every kind of
//! button goes through each adapter's rendering and back through
//! `ButtonAction::parse`, and every button a drill puts on screen in the
//! demo is clicked through the web chat without an error.

use std::collections::BTreeSet;
use std::time::Duration;

use scalebot::chat::button::ACTION_IDS;
use scalebot::chat::{Button, ButtonAction, ButtonStyle, Confirm, Message};
use scalebot::demo::chat::WebBody;
use scalebot::discord::render::{components, parse_custom_id};
use scalebot::slack::chat::blocks;
use serde_json::Value;

use crate::support::demo::{spawn_demo, text_of};

/// One of each kind. The `match` below has no wildcard, so a new kind of
/// button does not compile until it is listed here.
fn every_kind() -> Vec<ButtonAction> {
    let all = vec![
        ButtonAction::ConfirmPlan {
            plan: "P-7K2".into(),
        },
        ButtonAction::CancelPlan {
            plan: "P-7K2".into(),
        },
        ButtonAction::Run {
            command: "rds proxy matbakh-db".into(),
            incident: None,
        },
        ButtonAction::Run {
            command: "concurrency persona-api 120".into(),
            incident: Some("INC-4Q9".into()),
        },
        ButtonAction::Acknowledge {
            incident: "INC-4Q9".into(),
        },
        ButtonAction::Escalate {
            incident: "INC-4Q9".into(),
        },
        ButtonAction::Resolve {
            incident: "INC-4Q9".into(),
        },
    ];
    let kinds: BTreeSet<usize> = all
        .iter()
        .map(|a| match a {
            ButtonAction::ConfirmPlan { .. } => 0,
            ButtonAction::CancelPlan { .. } => 1,
            ButtonAction::Run { .. } => 2,
            ButtonAction::Acknowledge { .. } => 3,
            ButtonAction::Escalate { .. } => 4,
            ButtonAction::Resolve { .. } => 5,
        })
        .collect();
    assert_eq!(kinds.len(), ACTION_IDS.len(), "one sample of every kind");
    all
}

fn message_with(actions: &[ButtonAction]) -> Message {
    let mut m = Message::text("every kind of button");
    m.buttons = actions
        .iter()
        .enumerate()
        .map(|(i, a)| Button {
            label: format!("B{i}"),
            action: a.clone(),
            // A destructive confirm asks twice on Discord: covered too.
            style: if i == 0 {
                ButtonStyle::Danger
            } else {
                ButtonStyle::Default
            },
            confirm: (i == 0).then(|| Confirm {
                title: "Run?".into(),
                text: "really".into(),
                confirm: "Yes".into(),
                deny: "No".into(),
            }),
        })
        .collect();
    m
}

/// Every `(key, value)` pair of objects that have `key`, depth first.
fn find_all<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            if o.contains_key(key) {
                out.push(v);
            }
            o.values().for_each(|c| find_all(c, key, out));
        }
        Value::Array(a) => a.iter().for_each(|c| find_all(c, key, out)),
        _ => {}
    }
}

#[test]
fn every_kind_of_button_round_trips_through_slack_discord_and_the_web_chat() {
    let actions = every_kind();
    let message = message_with(&actions);

    let slack = serde_json::to_value(blocks(&message)).expect("blocks serialise");
    let mut found = Vec::new();
    find_all(&slack, "action_id", &mut found);
    let from_slack: Vec<ButtonAction> = found
        .iter()
        .map(|b| {
            ButtonAction::parse(
                b["action_id"].as_str().unwrap_or_default(),
                b["value"].as_str().unwrap_or_default(),
            )
            .expect("Slack button parses")
        })
        .collect();
    assert_eq!(from_slack, actions, "Slack");

    let discord = Value::Array(components(&message));
    let mut found = Vec::new();
    find_all(&discord, "custom_id", &mut found);
    let from_discord: Vec<ButtonAction> = found
        .iter()
        .map(|b| {
            let id = b["custom_id"].as_str().unwrap_or_default();
            let (action, value, _ask) = parse_custom_id(id).expect("a custom_id the bot made");
            ButtonAction::parse(action, value).expect("Discord button parses")
        })
        .collect();
    assert_eq!(from_discord, actions, "Discord");

    let web = WebBody::from(&message);
    let from_web: Vec<ButtonAction> = web
        .buttons
        .iter()
        .map(|b| ButtonAction::parse(&b.action_id, &b.value).expect("web button parses"))
        .collect();
    assert_eq!(from_web, actions, "web chat");
}

/// The demo's drills put incidents, runbook buttons and plans on screen;
/// every button of every message is clicked as an operator, and nothing
/// answers with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_button_of_a_drill_is_accepted_by_the_web_chat() {
    let app = spawn_demo(60.0, "2026-11-27T02:00:00Z").await;
    let (status, _) = app.command("alice", "ops", "/scale drill throttling").await;
    assert_eq!(status, 200);
    let root = app
        .wait_for("alice", "an incident with Escalate", |m| {
            m["body"]["buttons"]
                .as_array()
                .is_some_and(|b| b.iter().any(|b| b["label"] == "Escalate"))
        })
        .await;
    assert!(text_of(&root).contains("INC-"), "{}", text_of(&root));
    // A figure view with its runbook button, then a plan from it.
    app.command("alice", "ops", "/scale throttles persona-api")
        .await;
    app.wait_for("alice", "the Raise button", |m| {
        m["body"]["buttons"].as_array().is_some_and(|b| {
            b.iter()
                .any(|b| b["label"].as_str().is_some_and(|l| l.starts_with("Raise")))
        })
    })
    .await;

    // Clicks that end things (Resolve, Cancel) go last, so that the
    // others act on something live.
    let last = |b: &Value| {
        matches!(
            b["action_id"].as_str(),
            Some("incident.resolve" | "plan.cancel")
        )
    };
    let mut clicked = BTreeSet::new();
    // Two passes for what the first clicks bring (a plan from a runbook
    // button), then the final ones.
    for finals in [false, false, true] {
        for m in app.messages("alice").await {
            for b in m["body"]["buttons"].as_array().into_iter().flatten() {
                let id = b["action_id"].as_str().unwrap_or_default().to_owned();
                let value = b["value"].as_str().unwrap_or_default().to_owned();
                if finals != last(b) || !clicked.insert((id.clone(), value.clone())) {
                    continue;
                }
                let channel = m["channel"].as_str().unwrap_or("ops");
                let (status, body) = app.button("alice", channel, &id, &value).await;
                assert_eq!(status, 202, "{id} {value}: {body}");
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let kinds: BTreeSet<&str> = clicked.iter().map(|(id, _)| id.as_str()).collect();
    for id in [
        "incident.ack",
        "incident.escalate",
        "incident.resolve",
        "run",
        "plan.confirm",
    ] {
        assert!(kinds.contains(id), "no `{id}` button was drawn: {kinds:?}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for m in app.messages("alice").await {
        let text = text_of(&m);
        assert!(
            !text.contains("unknown button") && !text.contains("did not work"),
            "{text}"
        );
    }
    app.stop().await;
}

/// Every button the bot draws on Slack for a throttling episode (the
/// figures' runbook button, the plan's Confirm and Cancel, the incident's
/// Acknowledge, Escalate and Resolve) is clicked back as a signed Slack
/// `block_actions` request, and none is refused as unknown or fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_button_drawn_on_slack_is_accepted_back_as_a_signed_click() {
    use crate::support::app::{INCIDENTS, Options, message_text, spawn_app};
    use crate::support::moto;

    let aws = moto::url();
    moto::create_function(&aws, "walk-fn", Some(10)).await;
    moto::seed_day_with_throttling(&aws, "walk-fn", chrono::Utc::now(), 100.0).await;
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s| {
            s.roles.insert("operators".into(), vec!["U0OPS".into()]);
        })),
        ..Options::default()
    })
    .await;
    app.command("throttles walk-fn", "U0OPS", "C0OPS").await;
    let buttons_in = |post: &Value| -> Vec<(String, String)> {
        let mut found = Vec::new();
        find_all(&post["blocks"], "action_id", &mut found);
        found
            .iter()
            .map(|b| {
                let id = b["action_id"].as_str().unwrap_or_default().to_owned();
                (id, b["value"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    };
    let figures = app
        .slack
        .wait_for(30, "the figures with their runbook button", |s| {
            s.posts("C0OPS")
                .into_iter()
                .find(|p| !buttons_in(p).is_empty())
        })
        .await;
    let mut clicked = BTreeSet::new();
    let mut click_all = |channel: &'static str, posts: Vec<Value>| {
        let mut todo = Vec::new();
        for post in posts {
            for (id, value) in buttons_in(&post) {
                // Ending things goes last, so the rest acts on something live.
                if clicked.insert((id.clone(), value.clone())) {
                    todo.push((channel, id, value));
                }
            }
        }
        todo.sort_by_key(|(_, id, _)| matches!(id.as_str(), "incident.resolve" | "plan.cancel"));
        todo
    };
    for (channel, id, value) in click_all("C0OPS", vec![figures]) {
        assert_eq!(app.click("U0OPS", channel, &id, &value).await, 200);
    }
    // The runbook button proposed a plan in a new incident's thread.
    app.wait_incident_post("Plan ").await;
    let incident_posts = app.slack.posts(INCIDENTS);
    let todo = click_all(INCIDENTS, incident_posts);
    let kinds: BTreeSet<&str> = todo.iter().map(|(_, id, _)| id.as_str()).collect();
    for id in [
        "plan.confirm",
        "plan.cancel",
        "incident.escalate",
        "incident.resolve",
    ] {
        assert!(kinds.contains(id), "no `{id}` drawn on Slack: {kinds:?}");
    }
    for (channel, id, value) in &todo {
        assert_eq!(app.click("U0OPS", channel, id, value).await, 200, "{id}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for e in app.slack.ephemerals("U0OPS") {
        let text = message_text(&e);
        assert!(
            !text.contains("unknown button") && !text.contains("did not work"),
            "{text}"
        );
    }
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    let counted = |outcome: &str| {
        metrics.lines().any(|l| {
            l.starts_with("scalebot_requests_total")
                && l.contains(r#"route="/slack/interactions""#)
                && l.contains(&format!(r#"outcome="{outcome}""#))
        })
    };
    assert!(!counted("refused"), "a drawn button was refused: {metrics}");
    assert!(counted("ok"), "{metrics}");
    app.stop().await;
}
