//! Discord end to end: interactions signed with the test's own Ed25519 key
//! through the real server's `/discord/interactions`, AWS through moto, and
//! serenity's REST client pointed at the local Discord-compatible fake,
//! which records what the channels would show.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use crate::sns::{TOPIC, alarm, deliver, sns_options};
use crate::support::app::{Options, TestApp, decode_png, now, spawn_app};
use crate::support::discord::{APPLICATION_ID, BOT_TOKEN, FakeDiscord, GUILD_ID, buttons, shown};
use crate::support::moto;
use crate::support::sns::SnsSigner;
use scalebot::domain::FunctionName;
use scalebot::settings_file::SettingsFile;

const OPS: &str = "1500000000000000001";
const INCIDENTS: &str = "1500000000000000002";
const OPERATORS_ROLE: &str = "1600000000000000001";
const OPERATOR: &str = "1700000000000000001";
const STRANGER: &str = "1700000000000000002";

fn discord_settings(s: &mut SettingsFile) {
    s.channels.incidents = INCIDENTS.into();
    s.channels.reports = "1500000000000000003".into();
    // A Discord role, written `&<id>`: whoever has it may confirm.
    s.roles
        .insert("operators".into(), vec![format!("&{OPERATORS_ROLE}")]);
}

async fn discord_app() -> TestApp {
    spawn_app(Options {
        discord: true,
        tweak: Some(Box::new(discord_settings)),
        ..Options::default()
    })
    .await
}

fn member(user: &str, roles: &[&str]) -> Value {
    json!({
        "user": {"id": user, "username": "oncall", "discriminator": "0", "global_name": "On Call", "avatar": null},
        "roles": roles, "permissions": "2147483647", "joined_at": "2025-01-01T00:00:00.000000+00:00",
        "deaf": false, "mute": false, "nick": null, "pending": false, "flags": 0
    })
}

fn roles_of(user: &str) -> Vec<&'static str> {
    if user == OPERATOR {
        vec![OPERATORS_ROLE]
    } else {
        vec![]
    }
}

/// A fresh interaction id: Discord gives every interaction its own, and
/// the bot refuses a second one with the same id as a replay.
fn interaction_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("19{n:017}")
}

/// An APPLICATION_COMMAND interaction as Discord documents it.
fn command(token: &str, user: &str, channel: &str, sub: Value) -> Value {
    json!({
        "type": 2, "id": interaction_id(), "application_id": APPLICATION_ID, "token": token,
        "version": 1, "guild_id": GUILD_ID, "channel_id": channel,
        "channel": {"id": channel, "type": 0, "guild_id": GUILD_ID, "name": "ops"},
        "member": member(user, &roles_of(user)),
        "data": {"id": "1900000000000000001", "name": "scale", "type": 1, "guild_id": GUILD_ID, "options": [sub]},
        "locale": "en-US", "guild_locale": "en-US", "app_permissions": "2147483647",
        "entitlements": [], "authorizing_integration_owners": {"0": GUILD_ID}, "context": 0,
        "attachment_size_limit": 10485760
    })
}

/// A MESSAGE_COMPONENT interaction: a click on `custom_id` of `message`.
fn click(token: &str, user: &str, channel: &str, custom_id: &str, message: Value) -> Value {
    json!({
        "type": 3, "id": interaction_id(), "application_id": APPLICATION_ID, "token": token,
        "version": 1, "guild_id": GUILD_ID, "channel_id": channel,
        "channel": {"id": channel, "type": 11, "guild_id": GUILD_ID},
        "member": member(user, &roles_of(user)),
        "message": message,
        "data": {"custom_id": custom_id, "component_type": 2},
        "locale": "en-US", "guild_locale": "en-US", "app_permissions": "2147483647",
        "entitlements": [], "authorizing_integration_owners": {"0": GUILD_ID}, "context": 0,
        "attachment_size_limit": 10485760
    })
}

fn message_obj(id: &str, channel: &str, body: &Value, flags: u64) -> Value {
    json!({"id": id, "channel_id": channel, "embeds": body["embeds"], "components": body["components"], "flags": flags, "type": 0, "content": ""})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_interaction_is_refused_and_changes_nothing() {
    let app = discord_app().await;
    let key = app.discord_key.clone().expect("key");
    let ping = json!({"type": 1, "id": "1800000000000000009", "application_id": APPLICATION_ID, "token": "t", "version": 1}).to_string();

    // PING → PONG, as Discord checks when the URL is saved.
    let resp = app.discord_signed(&ping, now(), &key).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"type": 1})
    );

    // Signed with another key (Discord's own deliberate bad signatures).
    let other = ring::signature::Ed25519KeyPair::from_pkcs8(
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .expect("pkcs8")
            .as_ref(),
    )
    .expect("other key");
    assert_eq!(app.discord_signed(&ping, now(), &other).await.status(), 401);
    // Stale and future timestamps, correctly signed.
    assert_eq!(
        app.discord_signed(&ping, now() - 301, &key).await.status(),
        401
    );
    assert_eq!(
        app.discord_signed(&ping, now() + 400, &key).await.status(),
        401
    );
    // A body changed after signing.
    let ts = now().to_string();
    let mut signed = ts.clone().into_bytes();
    signed.extend_from_slice(ping.as_bytes());
    let sig = hex::encode(key.sign(&signed).as_ref());
    let post = |sig: Option<&str>, ts: Option<&str>, body: &str| {
        let mut req = app
            .http
            .post(format!("{}/discord/interactions", app.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = sig {
            req = req.header("x-signature-ed25519", s.to_owned());
        }
        if let Some(t) = ts {
            req = req.header("x-signature-timestamp", t.to_owned());
        }
        req.send()
    };
    let tampered = ping.replace("\"t\"", "\"u\"");
    assert_eq!(
        post(Some(&sig), Some(&ts), &tampered)
            .await
            .expect("send")
            .status(),
        401
    );
    assert_eq!(
        post(None, Some(&ts), &ping).await.expect("send").status(),
        401
    );
    assert_eq!(
        post(Some(&sig), None, &ping).await.expect("send").status(),
        401
    );
    assert_eq!(
        post(Some("zz-not-hex"), Some(&ts), &ping)
            .await
            .expect("send")
            .status(),
        401
    );
    // Signed, but not an interaction.
    assert_eq!(
        app.discord_signed("{not json", now(), &key).await.status(),
        400
    );
    // Signed, but a type the bot does not handle (modal submit, unknown).
    for kind in [5, 99] {
        let body = json!({"type": kind, "id": "1", "token": "t", "channel_id": OPS, "member": member(OPERATOR, &[])}).to_string();
        let resp = app.discord_signed(&body, now(), &key).await;
        assert_eq!(resp.status(), 400, "type {kind}");
        assert!(
            resp.text()
                .await
                .unwrap_or_default()
                .contains("unsupported interaction type")
        );
    }
    // A click on a button the bot never made.
    let forged = click(
        "tok-f",
        OPERATOR,
        OPS,
        "no separator",
        json!({"id": "1", "flags": 0}),
    );
    let resp = app.discord_signed(&forged.to_string(), now(), &key).await;
    assert_eq!(resp.status(), 400);
    // A command without a member or user.
    let mut anonymous = command("tok-a", OPERATOR, OPS, json!({"name": "health", "type": 1}));
    anonymous.as_object_mut().expect("object").remove("member");
    assert_eq!(
        app.discord_signed(&anonymous.to_string(), now(), &key)
            .await
            .status(),
        400
    );

    // Each request counted once, under its reason.
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for (outcome, n) in [
        ("ok", 1),
        ("bad_signature", 3),
        ("stale", 2),
        ("missing_signature", 2),
        ("malformed", 3),
        ("unknown_type", 2),
    ] {
        let series = format!(
            r#"scalebot_requests_total{{route="/discord/interactions",outcome="{outcome}"}} {n}"#
        );
        assert!(metrics.contains(&series), "{series} in:\n{metrics}");
    }
    assert!(
        metrics.contains(r#"scalebot_ack_seconds_count{route="/discord/interactions"} 13"#),
        "{metrics}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.fake_discord().calls().is_empty(), "nothing was posted");
    assert!(app.audit().await.is_empty(), "nothing reached the engine");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_answers_with_figures_and_a_chart_attachment() {
    let aws = moto::url();
    let function = "persona-api-dc";
    moto::create_function(&aws, function, Some(100)).await;
    moto::seed_day_with_throttling(&aws, function, Utc::now(), 100.0).await;
    let app = discord_app().await;
    let fake = app.fake_discord().clone();

    let started = Instant::now();
    let answer = app
        .discord_interaction(&command(
            "tok-throttles",
            STRANGER,
            OPS,
            json!({"name": "throttles", "type": 1, "options": [{"name": "function", "type": 3, "value": function}]}),
        ))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within Discord's 3 s"
    );
    assert_eq!(answer["type"], 4, "{answer}");
    assert!(
        answer["data"]["flags"].is_null(),
        "public, so the result can replace it"
    );
    assert!(shown(&answer["data"]).contains(&format!("/scale throttles {function}")));

    // The result replaces the first answer (the interaction's @original).
    let edit = fake
        .wait_for(30, "the result as the edit of the answer", |f| {
            f.original_edits("tok-throttles").into_iter().next()
        })
        .await;
    let text = shown(&edit.body);
    assert!(text.contains(&format!("Throttles: {function}")), "{text}");
    assert!(
        text.contains("**200 throttles** in the last 10 minutes"),
        "{text}"
    );

    // The chart: a PNG attached to a channel message and shown in its embed.
    let chart = fake
        .wait_for(30, "the chart attachment", |f| {
            f.messages(OPS).into_iter().find(|m| !m.files.is_empty())
        })
        .await;
    let file = &chart.files[0];
    assert!(file.filename.ends_with(".png"), "{}", file.filename);
    assert_eq!(decode_png(&file.bytes), (1000, 500));
    assert_eq!(
        chart.body["embeds"][0]["image"]["url"],
        format!("attachment://{}", file.filename)
    );
    assert!(shown(&chart.body).contains(function));
    assert_eq!(
        app.finished_outcome(&format!("throttles {function}")).await,
        "ok"
    );
    let row = app
        .audit()
        .await
        .into_iter()
        .find(|a| a.command == format!("throttles {function}"))
        .expect("audited");
    assert_eq!(
        (row.platform.as_str(), row.actor.as_str()),
        ("discord", STRANGER)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_concurrency_change_runs_once_in_the_incident_thread() {
    let aws = moto::url();
    let function = "discord-conc-fn";
    moto::create_function(&aws, function, Some(50)).await;
    let app = discord_app().await;
    let fake = app.fake_discord().clone();

    let answer = app
        .discord_interaction(&command(
            "tok-conc",
            OPERATOR,
            OPS,
            json!({"name": "concurrency", "type": 1, "options": [
                {"name": "function", "type": 3, "value": function},
                {"name": "value", "type": 3, "value": "80"}]}),
        ))
        .await;
    assert_eq!(answer["type"], 4);

    // The incident's root message, a thread made from it, the plan inside.
    let root = fake
        .wait_for(30, "the incident root", |f| {
            f.messages(INCIDENTS).into_iter().next()
        })
        .await;
    let root_id = root.message_id.clone().expect("root id");
    let plan = fake
        .wait_for(30, "the plan in the thread", |f| {
            f.messages(&root_id).into_iter().find(|m| {
                buttons(&m.body)
                    .iter()
                    .any(|b| b.1.starts_with("plan.confirm|"))
            })
        })
        .await;
    assert!(
        fake.threads()
            .iter()
            .any(|(ch, msg, _)| ch == INCIDENTS && *msg == root_id),
        "thread made from the root: {:?}",
        fake.threads()
    );
    assert!(
        shown(&plan.body).contains("50 → 80"),
        "{}",
        shown(&plan.body)
    );
    let confirm = buttons(&plan.body)
        .into_iter()
        .find(|b| b.1.starts_with("plan.confirm|"))
        .expect("confirm button");
    assert_eq!(
        confirm.2, 1,
        "a plain confirm is a primary button, one click"
    );
    assert!(
        buttons(&plan.body)
            .iter()
            .any(|b| b.1.starts_with("plan.cancel|"))
    );
    let plan_id = confirm.1.trim_start_matches("plan.confirm|").to_owned();
    // The pointer in the invoking channel replaced the command's answer.
    let pointer = fake
        .wait_for(10, "the pointer as the answer's edit", |f| {
            f.original_edits("tok-conc").into_iter().next()
        })
        .await;
    assert!(
        shown(&pointer.body).contains(&plan_id),
        "{}",
        shown(&pointer.body)
    );

    let plan_msg = message_obj(
        plan.message_id.as_deref().unwrap_or_default(),
        &root_id,
        &plan.body,
        0,
    );
    // Someone without the role: told privately, nothing changes.
    let answer = app
        .discord_interaction(&click(
            "tok-stranger",
            STRANGER,
            &root_id,
            &confirm.1,
            plan_msg.clone(),
        ))
        .await;
    assert_eq!(answer["type"], 6, "deferred update: {answer}");
    let refusal = fake
        .wait_for(10, "the refusal, only for the clicker", |f| {
            f.followups("tok-stranger").into_iter().next()
        })
        .await;
    assert_eq!(refusal.body["flags"], 64);
    assert!(
        shown(&refusal.body).contains("Only people in role `operators`"),
        "{}",
        shown(&refusal.body)
    );
    assert_eq!(moto::reserved(&aws, function).await, Some(50));

    // An operator (by Discord role) confirms.
    let answer = app
        .discord_interaction(&click(
            "tok-op",
            OPERATOR,
            &root_id,
            &confirm.1,
            plan_msg.clone(),
        ))
        .await;
    assert_eq!(answer["type"], 6);
    let done = format!("reserved concurrency of `{function}` is now 80");
    fake.wait_for(30, "the result in the thread", |f| {
        f.messages(&root_id)
            .into_iter()
            .find(|m| shown(&m.body).contains(&done))
    })
    .await;
    assert_eq!(moto::reserved(&aws, function).await, Some(80));
    // The plan message is redrawn without its buttons.
    let redrawn = fake
        .wait_for(10, "the plan redrawn", |f| {
            f.edits(&root_id, plan.message_id.as_deref().unwrap_or_default())
                .into_iter()
                .next_back()
        })
        .await;
    assert!(buttons(&redrawn.body).is_empty(), "{}", redrawn.body);

    // A second click runs nothing again.
    app.discord_interaction(&click("tok-op2", OPERATOR, &root_id, &confirm.1, plan_msg))
        .await;
    let again = fake
        .wait_for(10, "the answer to the second click", |f| {
            f.followups("tok-op2").into_iter().next()
        })
        .await;
    assert!(
        shown(&again.body).contains("nothing was done"),
        "{}",
        shown(&again.body)
    );
    let executed = fake
        .messages(&root_id)
        .into_iter()
        .filter(|m| shown(&m.body).contains(&done))
        .count();
    assert_eq!(executed, 1, "executed exactly once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_button_asks_for_a_second_click() {
    let app = discord_app().await;
    let plan = json!({"embeds": [{"title": "⚠️ Plan P-XYZ: /scale scale-down", "fields": [{"name": "Reserved concurrency of `a`", "value": "100 → 5"}]}], "components": []});
    let first = app
        .discord_interaction(&click(
            "tok-ask",
            OPERATOR,
            INCIDENTS,
            "ask|plan.confirm|P-XYZ",
            message_obj("1", INCIDENTS, &plan, 0),
        ))
        .await;
    assert_eq!(first["type"], 4, "{first}");
    assert_eq!(
        first["data"]["flags"], 64,
        "only the clicker sees the question"
    );
    let text = shown(&first["data"]);
    assert!(text.contains("100 → 5"), "{text}");
    let red = buttons(&first["data"]);
    assert_eq!(red[0].1, "plan.confirm|P-XYZ");
    assert_eq!(red[0].2, 4, "the real button is red");
    // "Not yet" closes the question.
    let dismissed = app
        .discord_interaction(&click(
            "tok-no",
            OPERATOR,
            INCIDENTS,
            &red[1].1,
            message_obj("2", INCIDENTS, &first["data"], 64),
        ))
        .await;
    assert_eq!(dismissed["type"], 7);
    // The first click reached nothing: no plan was looked up or audited.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.audit().await.is_empty());
    assert!(app.fake_discord().calls().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_opens_an_incident_thread_with_a_chart_and_escalates_to_a_role() {
    let aws = moto::url();
    moto::create_function(&aws, "discord-sns-fn", Some(50)).await;
    moto::seed_day_with_throttling(&aws, "discord-sns-fn", Utc::now(), 100.0).await;
    let mut opts = sns_options(
        |s| {
            discord_settings(s);
            s.escalation.levels[0].escalate_after_seconds = Some(2);
            s.escalation.levels[1].mention = vec![format!("&{OPERATORS_ROLE}")];
            s.escalation.levels[1].escalate_after_seconds = Some(2);
            s.escalation.levels[2].mention = vec![format!("&{OPERATORS_ROLE}"), OPERATOR.into()];
            s.escalation.dedicated_channel_at = Some(3);
        },
        None,
    );
    opts.discord = true;
    let app = spawn_app(opts).await;
    let fake = app.fake_discord().clone();
    let signer = SnsSigner::get();
    let msg = signer.notification(
        TOPIC,
        "msg-discord-alarm-1",
        Some("ALARM: \"discord-sns-fn-throttles\" in EU (Frankfurt)"),
        &alarm("discord-sns-fn-throttles", "ALARM", "discord-sns-fn"),
    );
    assert_eq!(deliver(&app, &msg, &[]).await, (200, "stored\n".into()));

    let root = fake
        .wait_for(30, "the incident's root message", |f| {
            f.messages(INCIDENTS)
                .into_iter()
                .find(|m| shown(&m.body).contains("ALARM: discord-sns-fn-throttles"))
        })
        .await;
    let root_id = root.message_id.clone().expect("id");
    let ids: Vec<String> = buttons(&root.body).into_iter().map(|b| b.1).collect();
    assert!(
        ids.iter().any(|i| i.starts_with("incident.ack|")),
        "{ids:?}"
    );
    assert!(
        ids.iter()
            .any(|i| i.starts_with("run|concurrency discord-sns-fn auto")),
        "{ids:?}"
    );
    fake.wait_for(30, "L1 diagnostics in the thread", |f| {
        f.messages(&root_id)
            .into_iter()
            .find(|m| shown(&m.body).contains("L1 diagnostics"))
    })
    .await;
    let chart = fake
        .wait_for(30, "the alarm chart in the thread", |f| {
            f.messages(&root_id)
                .into_iter()
                .find(|m| m.files.iter().any(|x| x.filename.starts_with("alarm-")))
        })
        .await;
    assert_eq!(decode_png(&chart.files[0].bytes), (1000, 500));
    assert!(fake.threads().iter().any(|(_, m, _)| *m == root_id));
    // L1 → L2 mentions the Discord role.
    fake.wait_for(30, "the L2 escalation mentioning the role", |f| {
        f.messages(&root_id)
            .into_iter()
            .find(|m| shown(&m.body).contains(&format!("<@&{OPERATORS_ROLE}>")))
    })
    .await;
    // One thread per incident, however many posts went into it.
    let made = fake
        .threads()
        .iter()
        .filter(|(_, m, _)| *m == root_id)
        .count();
    assert_eq!(made, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_post_waits_for_the_reset_and_is_posted_once() {
    let app = discord_app().await;
    let fake = app.fake_discord().clone();
    fake.rate_limit(&format!("/channels/{OPS}/messages"), 1, 1.0);
    let started = Instant::now();
    let posted = app
        .engine
        .chat()
        .post(OPS, None, &scalebot::chat::Message::text("after the limit"))
        .await
        .expect("posted after waiting");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.rate_limited().len(), 1);
    let posts = fake.messages(OPS);
    assert_eq!(posts.len(), 1, "posted once");
    assert_eq!(posts[0].message_id.as_deref(), Some(posted.id.as_str()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_is_private_and_functions_autocomplete() {
    let app = discord_app().await;
    let help = app
        .discord_interaction(&command(
            "tok-help",
            STRANGER,
            OPS,
            json!({"name": "help", "type": 1}),
        ))
        .await;
    assert_eq!(help["type"], 4);
    assert_eq!(help["data"]["flags"], 64);
    assert!(shown(&help["data"]).contains("throttles"));

    let auto = json!({
        "type": 4, "id": "1800000000000000003", "application_id": APPLICATION_ID, "token": "tok-auto",
        "version": 1, "guild_id": GUILD_ID, "channel_id": OPS, "member": member(STRANGER, &[]),
        "data": {"id": "1900000000000000001", "name": "scale", "type": 1, "options": [
            {"name": "throttles", "type": 1, "options": [{"name": "function", "type": 3, "value": "pers", "focused": true}]}]}
    });
    let answer = app.discord_interaction(&auto).await;
    assert_eq!(answer["type"], 8);
    let names: Vec<&str> = answer["data"]["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["value"].as_str())
        .collect();
    assert_eq!(names, vec!["persona-api"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_puts_the_catalog_as_guild_and_global_commands() {
    crate::support::app::init();
    let fake = FakeDiscord::start().await;
    let mut settings = SettingsFile::default();
    settings.discord.api_url = fake.api_url().parse().expect("a URL");
    settings.discord.application_id = Some(APPLICATION_ID.parse().expect("an id"));
    let root = env!("CARGO_MANIFEST_DIR");
    settings.catalog.commands_dir = format!("{root}/commands").into();
    settings.catalog.charts_dir = format!("{root}/charts").into();
    let (catalog, _) = scalebot::startup::load_catalogs(&settings.catalog).expect("catalog");
    let token = scalebot::config::Secret::new(BOT_TOKEN);
    let n = scalebot::discord::register(&settings.discord, &token, &catalog, Some(GUILD_ID))
        .await
        .expect("registered for the guild");
    assert_eq!(n, 1);
    let n = scalebot::discord::register(&settings.discord, &token, &catalog, None)
        .await
        .expect("registered globally");
    assert_eq!(n, 1);
    let calls = fake.calls();
    assert_eq!(calls[0].method, "PUT");
    assert_eq!(
        calls[0].path,
        format!("/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands")
    );
    assert_eq!(
        calls[1].path,
        format!("/applications/{APPLICATION_ID}/commands")
    );
    let scale = &calls[0].body[0];
    assert_eq!(scale["name"], "scale");
    let subs: Vec<&str> = scale["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["name"].as_str())
        .collect();
    for s in ["throttles", "concurrency", "rds", "help"] {
        assert!(subs.contains(&s), "{s} in {subs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_interactions_are_answered_over_rest() {
    let app = spawn_app(Options {
        discord: true,
        discord_gateway: true,
        tweak: Some(Box::new(discord_settings)),
        ..Options::default()
    })
    .await;
    let fake = app.fake_discord().clone();
    let identify = fake
        .wait_for(30, "IDENTIFY on the gateway", |f| {
            f.identified().into_iter().next()
        })
        .await;
    // serenity identifies with the token as its REST client holds it.
    assert!(
        identify["token"]
            .as_str()
            .is_some_and(|t| t.trim_start_matches("Bot ") == BOT_TOKEN),
        "{identify}"
    );
    assert_eq!(identify["intents"], 1, "GUILDS only: {identify}");

    // In gateway mode the HTTP route takes nothing, however well signed.
    let key = app.discord_key.clone().expect("key");
    let ping =
        json!({"type": 1, "id": "1", "application_id": APPLICATION_ID, "token": "t", "version": 1});
    assert_eq!(
        app.discord_signed(&ping.to_string(), now(), &key)
            .await
            .status(),
        404
    );

    let mut help = command(
        "tok-gw",
        STRANGER,
        OPS,
        json!({"name": "help", "type": 1, "options": []}),
    );
    help["id"] = json!("1800000000000000011");
    fake.dispatch("INTERACTION_CREATE", help);
    let answer = fake
        .wait_for(30, "the answer over REST", |f| {
            f.calls()
                .into_iter()
                .find(|c| c.path == "/interactions/1800000000000000011/tok-gw/callback")
        })
        .await;
    assert_eq!(answer.body["type"], 4, "{}", answer.body);
    assert_eq!(answer.body["data"]["flags"], 64);
    assert!(shown(&answer.body["data"]).contains("throttles"));

    // A destructive button's first click, over the gateway.
    let plan = json!({"embeds": [{"title": "Plan P-GW", "fields": [{"name": "Reserved concurrency", "value": "100 → 5", "inline": true}]}]});
    let mut message =
        crate::support::discord::message("1300000000000000099", INCIDENTS, &json!({}));
    message["embeds"] = plan["embeds"].clone();
    let mut ask = click(
        "tok-gw-ask",
        OPERATOR,
        INCIDENTS,
        "ask|plan.confirm|P-GW",
        message,
    );
    ask["id"] = json!("1800000000000000012");
    fake.dispatch("INTERACTION_CREATE", ask);
    let asked = fake
        .wait_for(30, "the second-click question over REST", |f| {
            f.calls()
                .into_iter()
                .find(|c| c.path == "/interactions/1800000000000000012/tok-gw-ask/callback")
        })
        .await;
    assert_eq!(asked.body["data"]["flags"], 64, "{}", asked.body);
    assert_eq!(buttons(&asked.body["data"])[0].1, "plan.confirm|P-GW");
    assert!(shown(&asked.body["data"]).contains("100 → 5"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_daily_report_goes_to_the_reports_channel_with_charts_in_its_thread() {
    use crate::support::clock::{ManualClock, utc};
    let reports = "1500000000000000003";
    // Saturday 28 March 2026, 09:00 in Berlin is 08:00 UTC.
    let clock = std::sync::Arc::new(ManualClock::at(utc("2026-03-28T08:00:05Z")));
    // The day before the report: durations, so there is a chart to attach.
    let points: Vec<_> = (1..=20)
        .map(|h| {
            (
                utc("2026-03-28T08:00:00Z") - chrono::Duration::hours(h),
                100.0 + h as f64,
            )
        })
        .collect();
    moto::put_lambda_metric(&moto::url(), "discord-sched-fn", "Duration", &points).await;
    let app = spawn_app(Options {
        discord: true,
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            discord_settings(s);
            // Ticked by hand below, not by the background sweep.
            s.reports.enabled = false;
            s.reports.functions = vec![FunctionName::parse("discord-sched-fn").expect("a name")];
        })),
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let fake = app.fake_discord().clone();
    let posted = app.engine.reports_tick().await;
    assert_eq!(posted, vec![scalebot::reports::ReportKind::Daily]);
    let root = fake
        .wait_for(30, "the daily report in the reports channel", |f| {
            f.messages(reports).into_iter().next()
        })
        .await;
    assert!(
        shown(&root.body).contains("Daily health check"),
        "{}",
        shown(&root.body)
    );
    let root_id = root.message_id.clone().expect("id");
    let charts = fake
        .wait_for(30, "the report's charts in its thread", |f| {
            let with_files: Vec<_> = f
                .messages(&root_id)
                .into_iter()
                .filter(|m| !m.files.is_empty())
                .collect();
            (!with_files.is_empty()).then_some(with_files)
        })
        .await;
    for c in &charts {
        assert_eq!(decode_png(&c.files[0].bytes), (1000, 500));
    }
    assert!(
        fake.threads()
            .iter()
            .any(|(ch, m, _)| ch == reports && *m == root_id)
    );
    // Claimed once: a second tick posts nothing.
    assert!(app.engine.reports_tick().await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenitys_rate_limiter_follows_discords_headers_over_https() {
    let app = spawn_app(Options {
        discord: true,
        discord_tls: true,
        tweak: Some(Box::new(discord_settings)),
        ..Options::default()
    })
    .await;
    let fake = app.fake_discord().clone();
    let chat = app.engine.chat().clone();
    let route = format!("/channels/{OPS}/messages");

    // A 429 with Retry-After: serenity waits as told, then posts once.
    fake.rate_limit(&route, 1, 1.0);
    let started = Instant::now();
    chat.post(OPS, None, &scalebot::chat::Message::text("one"))
        .await
        .expect("posted after the 429");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.rate_limited().len(), 1);
    assert_eq!(fake.messages(OPS).len(), 1);

    // A success that empties the bucket (X-RateLimit-Remaining: 0,
    // X-RateLimit-Reset-After: 1): the next post waits for the reset
    // instead of running into a 429.
    fake.exhaust(&route, 1.0);
    chat.post(OPS, None, &scalebot::chat::Message::text("two"))
        .await
        .expect("posted");
    let emptied = Instant::now();
    chat.post(OPS, None, &scalebot::chat::Message::text("three"))
        .await
        .expect("posted after the reset");
    let posts = fake.messages(OPS);
    assert_eq!(posts.len(), 3);
    let gap = posts[2].at.duration_since(emptied);
    assert!(
        gap >= Duration::from_millis(900),
        "waited {gap:?} for the bucket"
    );
    assert_eq!(fake.rate_limited().len(), 1, "no second 429");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_command_line_puts_scale_for_a_guild() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    let config = dir.path().join("discord.toml");
    std::fs::write(
        &config,
        format!(
            "[discord]\napplication_id = \"{APPLICATION_ID}\"\napi_url = \"{}\"\n[catalog]\ncommands_dir = \"{root}/commands\"\ncharts_dir = \"{root}/charts\"\n",
            fake.api_url()
        ),
    )
    .expect("write config");
    let run = move |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scalebot"));
        cmd.args(["discord", "register", "--guild", GUILD_ID, "--config"])
            .arg(&config)
            .env_remove("DISCORD_BOT_TOKEN");
        if let Some(t) = token {
            cmd.env("DISCORD_BOT_TOKEN", t);
        }
        cmd.output().expect("runs")
    };
    let out = tokio::task::spawn_blocking(move || (run(None), run(Some(BOT_TOKEN))))
        .await
        .expect("joined");
    let (without, with) = out;
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("DISCORD_BOT_TOKEN"));
    let stdout = String::from_utf8_lossy(&with.stdout);
    assert!(
        with.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(
        stdout.contains(&format!("registered /scale for server {GUILD_ID}")),
        "{stdout}"
    );
    let put = fake
        .calls()
        .into_iter()
        .find(|c| c.method == "PUT")
        .expect("the PUT");
    assert_eq!(
        put.path,
        format!("/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands")
    );
    assert_eq!(put.body[0]["name"], "scale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_holds_the_gateway_and_another_takes_over() {
    use scalebot::discord::gateway::LEASE;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("lease.db").display());
    // A replica that died holding the gateway lease, 6 s before it runs out.
    let store = scalebot::store::Store::connect(&scalebot::config::StoreSettings {
        url: url.clone(),
        max_connections: 2,
    })
    .await
    .expect("store");
    let set = Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        store
            .hold_lease(LEASE, "dead-replica", now, now + 6_000)
            .await
            .expect("lease")
    );
    let replica = || {
        spawn_app(Options {
            discord: true,
            discord_gateway: true,
            store_url: Some(url.clone()),
            tweak: Some(Box::new(discord_settings)),
            ..Options::default()
        })
    };
    let (a, b) = (replica().await, replica().await);
    let identified = |a: &TestApp, b: &TestApp| {
        a.fake_discord().identified().len() + b.fake_discord().identified().len()
    };
    let waited = set.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "replicas slow to start: {waited:?}"
    );
    tokio::time::sleep(Duration::from_secs(5) - waited).await;
    assert_eq!(
        identified(&a, &b),
        0,
        "nobody connects while the lease holds"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while identified(&a, &b) == 0 {
        assert!(Instant::now() < deadline, "nobody took the lease over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        set.elapsed() < Duration::from_secs(6 + 10),
        "taken over within 10 s"
    );
    // Renewed, not contested: still one session a few renewals later.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        identified(&a, &b),
        1,
        "one gateway session for two replicas"
    );
    let (holder, other) = if a.fake_discord().identified().is_empty() {
        (b, a)
    } else {
        (a, b)
    };
    // A clean stop gives the lease up: the other replica connects at its
    // next attempt.
    holder.stop().await;
    other
        .fake_discord()
        .wait_for(10, "the other replica's IDENTIFY", |f| {
            f.identified().into_iter().next()
        })
        .await;
    other.stop().await;
}

/// `[people]` across platforms: a Slack bot and a Discord bot share one
/// store (as replicas of one deployment would). Alice approves a two-person
/// plan on Slack; her Discord account's click on the same plan is no second
/// approval, the requester's Discord account is still the requester, and
/// only a second person (Bob, on Slack) makes the plan run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_on_slack_and_on_discord_is_one_approval() {
    use crate::support::app::{INCIDENTS as SLACK_INCIDENTS, message_text};
    const ALICE_SLACK: &str = "U0ALICE";
    const ALICE_DISCORD: &str = "1700000000000000011";
    const REQ_SLACK: &str = "U0REQUESTER";
    const REQ_DISCORD: &str = "1700000000000000012";
    const BOB_SLACK: &str = "U0BOB";
    let aws = moto::url();
    let function = "people-xp-fn";
    moto::create_function(&aws, function, Some(10)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let commands = dir.path().join("commands");
    std::fs::create_dir(&commands).expect("mkdir");
    let root = env!("CARGO_MANIFEST_DIR");
    for entry in std::fs::read_dir(format!("{root}/commands")).expect("commands") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text.replace("approvals = 1", "approvals = 2");
        std::fs::write(commands.join(path.file_name().expect("name")), text).expect("write");
    }
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let people = move |s: &mut SettingsFile| {
        s.catalog.commands_dir = commands.clone();
        s.roles.insert(
            "operators".into(),
            [
                ALICE_SLACK,
                ALICE_DISCORD,
                REQ_SLACK,
                REQ_DISCORD,
                BOB_SLACK,
            ]
            .map(String::from)
            .to_vec(),
        );
        s.people = scalebot::domain::people::People::new([
            ("alice", "slack", ALICE_SLACK),
            ("alice", "discord", ALICE_DISCORD),
            ("rick", "slack", REQ_SLACK),
            ("rick", "discord", REQ_DISCORD),
        ])
        .expect("people");
    };
    let on_discord = people.clone();
    let slack = spawn_app(Options {
        store_url: Some(url.clone()),
        tweak: Some(Box::new(people)),
        ..Options::default()
    })
    .await;
    let discord = spawn_app(Options {
        discord: true,
        store_url: Some(url),
        tweak: Some(Box::new(move |s: &mut SettingsFile| {
            discord_settings(s);
            on_discord(s);
        })),
        ..Options::default()
    })
    .await;
    let fake = discord.fake_discord().clone();

    let cmd = format!("concurrency {function} 12");
    slack.command(&cmd, REQ_SLACK, "C0OPS").await;
    let (plan, _) = slack.wait_plan(&cmd).await;
    slack
        .click(ALICE_SLACK, SLACK_INCIDENTS, "plan.confirm", &plan)
        .await;
    slack.wait_incident_post("approved plan").await;

    let custom_id = format!("plan.confirm|{plan}");
    let message = message_obj(
        "1800000000000000001",
        INCIDENTS,
        &json!({"embeds": [], "components": []}),
        0,
    );
    for (token, user, expected) in [
        ("tok-alice", ALICE_DISCORD, "You have already approved plan"),
        ("tok-rick", REQ_DISCORD, "You requested plan"),
    ] {
        let answer = discord
            .discord_interaction(&click(token, user, INCIDENTS, &custom_id, message.clone()))
            .await;
        assert_eq!(answer["type"], 6, "{answer}");
        let told = fake
            .wait_for(10, expected, |f| f.followups(token).into_iter().next())
            .await;
        assert!(
            shown(&told.body).contains(expected),
            "{user}: {}",
            shown(&told.body)
        );
    }
    assert_eq!(
        moto::reserved(&aws, function).await,
        Some(10),
        "alice on two platforms is one approval"
    );

    slack
        .click(BOB_SLACK, SLACK_INCIDENTS, "plan.confirm", &plan)
        .await;
    slack
        .wait_incident_post(&format!("reserved concurrency of `{function}` is now 12"))
        .await;
    assert_eq!(moto::reserved(&aws, function).await, Some(12));
    let confirmed = slack
        .slack
        .posts(SLACK_INCIDENTS)
        .into_iter()
        .map(|p| message_text(&p))
        .find(|t| t.contains("confirmed by"))
        .unwrap_or_default();
    assert!(
        confirmed.contains(ALICE_SLACK) && confirmed.contains(BOB_SLACK),
        "{confirmed}"
    );
    discord.stop().await;
    slack.stop().await;
}
