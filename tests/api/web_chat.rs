//! The demo's web chat over real HTTP: bad input is refused and changes
//! nothing; drills open incidents that escalate on the simulated clock;
//! roles from the demo config make two-person approval work; a drill on a
//! real AWS account is refused.

use std::time::{Duration, Instant};

use scalebot::domain::state::PlanState;

use serde_json::Value;

use crate::support::app::{Options, message_text, spawn_app};
use crate::support::demo::{button_value, spawn_demo, text_of};

/// The `error` a refused request answers with, checked to be a sentence a
/// newcomer can read: capitalised, ended, without a parser's words, a
/// status code or a button's internal name.
fn sentence(body: &Value) -> String {
    let e = body["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        e.starts_with(|c: char| c.is_uppercase() || c == '`') && e.ends_with('.'),
        "a sentence: {e:?}"
    );
    for jargon in [
        "line 1",
        "column",
        "expected",
        "missing field",
        "invalid type",
        "HTTP",
        "422",
        "server.shutdown",
        "plan.confirm",
        "action",
    ] {
        assert!(!e.contains(jargon), "{jargon:?} in {e:?}");
    }
    e
}

/// 02:00 UTC: a quiet hour, no alarm before a drill starts.
const NIGHT: &str = "2026-11-27T02:00:00Z";

#[tokio::test]
async fn bad_input_is_refused_with_a_sentence_and_changes_nothing() {
    let app = spawn_demo(1.0, NIGHT).await;
    let before = app.messages("alice").await.len();

    let (status, body) = app.post("/web/api/command", "{not json").await;
    assert_eq!(status, 400);
    assert!(
        sentence(&body).contains("could not read this request"),
        "{body}"
    );

    // A page that has not picked a user yet sends `null`: a sentence, not a
    // serde error.
    let (status, body) = app
        .post(
            "/web/api/command",
            r#"{"user":null,"channel":"ops","text":"/scale help"}"#,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        sentence(&body),
        "Pick a demo user first (one of alice, bob or carol): who you are decides what you may do."
    );

    let (status, body) = app.post("/web/api/command", r#"{"user":"alice"}"#).await;
    assert_eq!(status, 400, "missing fields: {body}");
    assert!(
        sentence(&body).contains("could not read this request"),
        "{body}"
    );

    let (status, body) = app
        .command("mallory", "ops", "/scale throttles persona-api")
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        sentence(&body),
        "There is no demo user called `mallory`. Reload the page and pick one of alice, bob or carol."
    );

    let (status, body) = app.command("alice", "nowhere", "/scale help").await;
    assert_eq!(status, 422);
    assert!(
        sentence(&body).contains("There is no channel `nowhere`"),
        "{body}"
    );

    let (status, body) = app.command("alice", "ops", "/deploy everything").await;
    assert_eq!(status, 422);
    assert!(sentence(&body).contains("not a scalebot command"), "{body}");

    let (status, body) = app
        .command("alice", "ops", "/scale frobnicate persona-api")
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        sentence(&body).starts_with("There is no command `frobnicate`."),
        "{body}"
    );
    let (status, body) = app.command("alice", "ops", "/scale throttles").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        sentence(&body),
        "This command needs <function>. Type it like this: `/scale throttles <function>`."
    );

    let (status, body) = app.command("alice", "ops", "/scale drill earthquake").await;
    assert_eq!(status, 422, "a drill that does not exist: {body}");

    let (status, body) = app.button("alice", "ops", "server.shutdown", "x").await;
    assert_eq!(status, 422);
    assert!(
        sentence(&body).contains("does not know this button"),
        "{body}"
    );

    let (status, body) = app.button("mallory", "ops", "plan.confirm", "P-1").await;
    assert_eq!(status, 403);
    sentence(&body);

    let (status, body) = app.post("/web/api/button", "[]").await;
    assert_eq!(status, 400);
    sentence(&body);

    let r = app
        .http
        .get(format!("{}/web/api/state?user=mallory", app.base))
        .send()
        .await
        .expect("state");
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .http
        .get(format!("{}/web/files/f999", app.base))
        .send()
        .await
        .expect("file");
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.expect("JSON");
    assert!(!sentence(&body).contains("f999"), "{body}");

    // Each request counted once: a command that reached the engine is `ok`
    // even when its answer is 422; the web routes keep no ack latency.
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for (route, outcome, n) in [
        ("/web/api/command", "ok", 3),
        ("/web/api/command", "refused", 6),
        ("/web/api/button", "refused", 3),
        ("/web/api/state", "refused", 1),
        ("/web/files/{id}", "refused", 1),
    ] {
        let series =
            format!(r#"scalebot_requests_total{{route="{route}",outcome="{outcome}"}} {n}"#);
        assert!(metrics.contains(&series), "{series} in:\n{metrics}");
    }
    assert!(
        !metrics.contains(r#"scalebot_ack_seconds_count{route="/web"#),
        "{metrics}"
    );

    // Only alice's own answers to the three parse errors were added,
    // visible to her alone; nothing public, no incident, no plan.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = app.messages("alice").await;
    let added: Vec<_> = after[before..].iter().collect();
    assert_eq!(added.len(), 3, "{added:#?}");
    assert!(added.iter().all(|m| m["to"] == "alice"));
    assert_eq!(
        app.messages("bob").await.len(),
        before,
        "bob sees nothing new"
    );
    let store = app.engine.store();
    assert!(store.open_incidents().await.expect("incidents").is_empty());
    assert!(store.recent_plans(10).await.expect("plans").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_drill_opens_an_incident_through_the_alarm_path_and_escalates_within_a_minute() {
    // Speed 20, as in config/demo.toml: L1 lasts 5 simulated minutes,
    // 15 wall-clock seconds.
    let app = spawn_demo(20.0, NIGHT).await;
    let (status, body) = app.command("alice", "ops", "/scale drill throttling").await;
    assert_eq!(status, 200, "{body}");
    let drill = app
        .wait_for("alice", "announcing the drill", |m| {
            text_of(m).contains("Drill started: throttling")
        })
        .await;
    let root = app
        .wait_for("alice", "opening the incident", |m| {
            m["channel"] == "incidents"
                && m["thread"].is_null()
                && text_of(m).contains("ALARM: persona-api-throttles")
        })
        .await;
    let root_id = root["id"].as_str().expect("id").to_owned();
    assert!(
        app.engine.store().sns_count().await.expect("count") >= 1,
        "the alarm was stored like an SNS message"
    );
    let l2 = app
        .wait_for("alice", "escalating to L2", |m| {
            m["thread"] == root_id.as_str() && text_of(m).contains("Escalated to L2")
        })
        .await;
    // In simulated time, so the check does not depend on the machine's
    // speed: the alarm needs about four minutes, L1 lasts five.
    let simulated = l2["at_ms"].as_i64().unwrap_or(0) - drill["at_ms"].as_i64().unwrap_or(0);
    assert!(
        (5 * 60_000..=12 * 60_000).contains(&simulated),
        "drill to L2 took {simulated} simulated ms"
    );
    app.stop().await;
}

#[tokio::test]
async fn two_operators_approve_what_a_viewer_requested() {
    let app = spawn_demo(10.0, NIGHT).await;
    let (status, body) = app.command("carol", "ops", "/scale cost-runaway").await;
    assert_eq!(status, 200, "{body}");
    let plan = app
        .wait_for("carol", "posting the plan", |m| {
            text_of(m).contains("Plan P") && button_value(m, "Confirm").is_some()
        })
        .await;
    let id = button_value(&plan, "Confirm").expect("plan id");
    let channel = plan["channel"].as_str().expect("channel").to_owned();

    // carol asked but is only a viewer.
    app.button("carol", &channel, "plan.confirm", &id).await;
    app.wait_for("carol", "refusing the viewer", |m| {
        m["to"] == "carol" && text_of(m).contains("Only people in role `operators`")
    })
    .await;
    app.button("alice", &channel, "plan.confirm", &id).await;
    app.wait_for("alice", "counting the first approval", |m| {
        text_of(m).contains("approved plan") && text_of(m).contains("1 of 2")
    })
    .await;
    let store = app.engine.store();
    assert_eq!(
        store.plan(&id).await.expect("plan").expect("row").state,
        PlanState::Pending
    );
    app.button("bob", &channel, "plan.confirm", &id).await;
    let started = Instant::now();
    loop {
        let state = store.plan(&id).await.expect("plan").expect("row").state;
        if state != PlanState::Pending && state != PlanState::Executing {
            assert!(state.executed(), "plan ended {state}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "plan still {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_on_a_real_aws_account_is_refused() {
    // The real server with the AWS adapter: no Drills port is wired in.
    let app = spawn_app(Options::default()).await;
    app.command("drill throttling", "U0ONCALL", "C0OPS").await;
    let post = app
        .slack
        .wait_for(30, "the refusal", |s| s.posts("C0OPS").into_iter().next())
        .await;
    let text = message_text(&post);
    assert!(text.contains("real AWS account"), "{text}");
    assert!(text.contains("nothing was changed"), "{text}");
    app.stop().await;
}
