//! Replayed signed requests: the same bytes with the same signature, sent
//! again inside the 5-minute window, change nothing the second time — on
//! Slack (slash commands and clicks), on Discord, and across two replicas
//! that share one store.

use std::time::Duration;

use scalebot::config::StoreSettings;
use scalebot::settings_file::SettingsFile;
use scalebot::slack::ingress::ALREADY_HANDLED;
use scalebot::store::{CLOCK_MARGIN_SECS, SeenRequest, Sighting, Store};
use serde_json::{Value, json};

use crate::support::app::{
    INCIDENTS, Options, TestApp, click_body, init, message_text, now, slash_body, spawn_app,
};
use crate::support::discord::{APPLICATION_ID, GUILD_ID};
use crate::support::moto;

const FORM: &str = "application/x-www-form-urlencoded";

async fn requests_with(app: &TestApp, route: &str, outcome: &str) -> u64 {
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let series = format!(r#"scalebot_requests_total{{route="{route}",outcome="{outcome}"}} "#);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_slash_command_is_answered_once_and_audited_once() {
    let app = spawn_app(Options::default()).await;
    let body = slash_body("help", "U0REPLAY", "C0OPS");
    let ts = now();

    let first = app
        .post_signed("/slack/commands", body.clone(), FORM, ts)
        .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("JSON");
    assert!(
        message_text(&first).contains("/scale throttles <function>"),
        "{first}"
    );

    // The same bytes, the same signature, inside the window.
    let again = app
        .post_signed("/slack/commands", body.clone(), FORM, ts)
        .await;
    assert_eq!(again.status(), 200, "a sentence, not an error");
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again["response_type"], "ephemeral");
    assert_eq!(again["text"], ALREADY_HANDLED);

    let audit = app.audit().await;
    assert_eq!(audit.len(), 1, "one command audited: {audit:?}");
    assert_eq!(requests_with(&app, "/slack/commands", "replayed").await, 1);
    assert_eq!(requests_with(&app, "/slack/commands", "ok").await, 1);

    // The same command typed again is a new request (Slack gives it a new
    // trigger_id, so a new signature), even within the same second.
    let typed_again = app
        .post_signed(
            "/slack/commands",
            slash_body("help", "U0REPLAY", "C0OPS"),
            FORM,
            ts,
        )
        .await;
    assert_eq!(typed_again.status(), 200);
    let typed_again: Value = typed_again.json().await.expect("JSON");
    assert!(message_text(&typed_again).contains("/scale throttles <function>"));
    assert_eq!(app.audit().await.len(), 2);

    // Each is remembered until its window closes, then pruned.
    let store = app.engine.store();
    assert_eq!(store.seen_request_count().await.expect("count"), 2);
    assert_eq!(
        store
            .prune_seen_requests(now() * 1000)
            .await
            .expect("prune"),
        0,
        "nothing expires inside the window"
    );
    let after_window = (ts + 300 + CLOCK_MARGIN_SECS + 1) * 1000;
    assert_eq!(
        store
            .prune_seen_requests(after_window)
            .await
            .expect("prune"),
        2
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_click_approves_once() {
    const OPS: &str = "U0REPLAYOPS";
    let aws = moto::url();
    moto::create_function(&aws, "replay-fn", Some(40)).await;
    let app = spawn_app(Options {
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            s.roles
                .insert("operators".into(), vec![OPS.into(), "U0REPLAYREQ".into()]);
        })),
        ..Options::default()
    })
    .await;
    app.command("concurrency replay-fn 60", "U0REPLAYREQ", "C0OPS")
        .await;
    let (plan, _) = app.wait_plan("concurrency replay-fn 60").await;

    let click = click_body(OPS, INCIDENTS, "plan.confirm", &plan);
    let ts = now();
    for _ in 0..3 {
        let resp = app
            .post_signed("/slack/interactions", click.clone(), FORM, ts)
            .await;
        assert_eq!(resp.status(), 200, "Slack only needs the 200");
    }
    app.wait_incident_post("reserved concurrency of `replay-fn` is now 60")
        .await;
    // Give a wrongly accepted copy time to show itself: the engine would
    // answer a second click with a private "is done".
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        app.slack.ephemerals(OPS).is_empty(),
        "the copies never reached the engine: {:?}",
        app.slack.ephemerals(OPS)
    );
    let approvals = app
        .engine
        .store()
        .approvals(&plan)
        .await
        .expect("approvals");
    assert_eq!(approvals, vec![OPS.to_owned()]);
    assert_eq!(
        requests_with(&app, "/slack/interactions", "replayed").await,
        2
    );
    assert_eq!(moto::reserved(&aws, "replay-fn").await, Some(60));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_discord_interaction_is_handled_once() {
    let app = spawn_app(Options {
        discord: true,
        ..Options::default()
    })
    .await;
    let key = app.discord_key.clone().expect("key");
    let user = "1700000000000000077";
    let channel = "1500000000000000077";
    let interaction = json!({
        "type": 2, "id": "1810000000000000077", "application_id": APPLICATION_ID,
        "token": "tok-replay", "version": 1, "guild_id": GUILD_ID, "channel_id": channel,
        "member": {"user": {"id": user, "username": "oncall"}, "roles": []},
        "data": {"id": "1900000000000000001", "name": "scale", "type": 1,
                 "options": [{"name": "help", "type": 1, "options": []}]}
    })
    .to_string();
    let ts = now();

    let first = app.discord_signed(&interaction, ts, &key).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("JSON");
    assert_eq!(first["type"], 4, "{first}");

    let again = app.discord_signed(&interaction, ts, &key).await;
    assert_eq!(again.status(), 400);
    assert!(
        again
            .text()
            .await
            .unwrap_or_default()
            .contains("already handled")
    );
    // Signed again with a later timestamp, the id is still the same
    // interaction's.
    let resigned = app.discord_signed(&interaction, ts + 1, &key).await;
    assert_eq!(resigned.status(), 400);

    let audit = app.audit().await;
    assert_eq!(audit.len(), 1, "handled once: {audit:?}");
    assert_eq!(
        requests_with(&app, "/discord/interactions", "replayed").await,
        2
    );
    // A PING is answered every time: it changes nothing.
    let ping = json!({"type": 1, "id": "1810000000000000078", "application_id": APPLICATION_ID, "token": "t", "version": 1}).to_string();
    for _ in 0..2 {
        assert_eq!(app.discord_signed(&ping, ts, &key).await.status(), 200);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_store_refuse_each_others_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let replica = || {
        spawn_app(Options {
            store_url: Some(url.clone()),
            ..Options::default()
        })
    };
    let a = replica().await;
    let b = replica().await;

    let body = slash_body("help", "U0TWO", "C0OPS");
    let ts = now();
    let at_a = a
        .post_signed("/slack/commands", body.clone(), FORM, ts)
        .await;
    assert_eq!(at_a.status(), 200);
    let at_b = b.post_signed("/slack/commands", body, FORM, ts).await;
    assert_eq!(at_b.status(), 200);
    let at_b: Value = at_b.json().await.expect("JSON");
    assert_eq!(at_b["text"], ALREADY_HANDLED, "{at_b}");

    // And the other way round.
    let body = slash_body("help", "U0TWO", "C0OPS");
    assert_eq!(
        b.post_signed("/slack/commands", body.clone(), FORM, ts)
            .await
            .status(),
        200
    );
    let at_a: Value = a
        .post_signed("/slack/commands", body, FORM, ts)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(at_a["text"], ALREADY_HANDLED, "{at_a}");

    b.engine.store().flush().await.expect("flush");
    let audit = a.audit().await;
    assert_eq!(audit.len(), 2, "two commands, each once: {audit:?}");
    a.stop().await;
    b.stop().await;
}

/// A request the store cannot record is refused, not run unremembered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_cannot_be_recorded_is_refused() {
    let app = spawn_app(Options::default()).await;
    app.engine.store().pool().close().await;
    let resp = app
        .post_signed(
            "/slack/commands",
            slash_body("help", "U1", "C1"),
            FORM,
            now(),
        )
        .await;
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap_or_default();
    assert!(text.contains("cannot record this request"), "{text}");
    assert!(!text.contains("pool"), "no raw store error: {text}");
    app.stop().await;
}

/// The store's check alone, on SQLite and PostgreSQL: one INSERT tells
/// the first copy from the rest, per platform, and pruning goes by expiry.
async fn first_sight_on(url: &str) {
    init();
    let settings = StoreSettings {
        url: url.to_owned(),
        max_connections: 4,
    };
    let one = Store::connect(&settings).await.expect("connects");
    let two = Store::connect(&settings).await.expect("a second replica");
    let seen = |platform, key: &str, closes| SeenRequest::until(platform, key, closes);
    let at = 1_800_000_000;
    let (first, second) = tokio::join!(
        one.first_sight(seen("slack", "1800000000:v0=ab", at)),
        two.first_sight(seen("slack", "1800000000:v0=ab", at)),
    );
    let mut both = [first.expect("stored"), second.expect("stored")];
    both.sort_by_key(|s| *s == Sighting::Repeat);
    assert_eq!(both, [Sighting::First, Sighting::Repeat]);
    // The same key on the other platform is another request.
    assert_eq!(
        one.first_sight(seen("discord", "1800000000:v0=ab", at))
            .await
            .expect("stored"),
        Sighting::First
    );
    assert_eq!(
        two.first_sight(seen("discord", "1800000000:v0=ab", at))
            .await
            .expect("stored"),
        Sighting::Repeat
    );
    let expires = (at + CLOCK_MARGIN_SECS) * 1000;
    assert_eq!(one.prune_seen_requests(expires).await.expect("prune"), 0);
    assert_eq!(
        one.prune_seen_requests(expires + 1).await.expect("prune"),
        2
    );
    assert_eq!(one.seen_request_count().await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sight_check_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    first_sight_on(&format!(
        "sqlite://{}",
        dir.path().join("seen.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sight_check_on_postgres() {
    first_sight_on(&crate::store::postgres_url().await).await;
}
