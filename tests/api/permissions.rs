//! Who may do what, through the real server with signed requests: incident
//! control for `[permissions] incidents` only (commands and buttons; the
//! refusal ephemeral, audited, and nothing else), reading restricted when
//! `[permissions] read` or a command file's `role` says so, Discord only in
//! the configured server, `/scale` registered for servers only, and
//! `scalebot check` saying who may do what.

use std::time::Duration;

use serde_json::{Value, json};

use crate::sns::{TOPIC, alarm, deliver, sns_options};
use crate::support::app::{INCIDENTS, Options, TestApp, message_text, spawn_app};
use crate::support::discord::{APPLICATION_ID, BOT_TOKEN, FakeDiscord, GUILD_ID};
use crate::support::sns::SnsSigner;
use scalebot::domain::state::IncidentState;
use scalebot::settings_file::SettingsFile;

/// In `operators` (see `sns_options`).
const OPERATOR: &str = "U0OPS";
/// In the Slack user group that `responders` lists.
const RESPONDER: &str = "U0RESP";
const RESPONDERS_GROUP: &str = "S0RESPONDERS";
/// A workspace member in no role.
const STRANGER: &str = "U0STRANGER";

const INCIDENT_REFUSAL: &str = "🚫 Only people in role `operators` or in role `responders` can \
     acknowledge, escalate, resolve, keep open or annotate incidents. Nothing was changed.";

async fn open_incident(app: &TestApp, name: &str) -> String {
    let msg = SnsSigner::get().notification(
        TOPIC,
        &format!("msg-{name}"),
        None,
        &alarm(name, "ALARM", "perm-fn"),
    );
    assert_eq!(deliver(app, &msg, &[]).await.0, 200);
    app.wait_incident_post(&format!("ALARM: {name}")).await;
    app.engine.store().open_incidents().await.expect("open")[0]
        .id
        .clone()
}

/// The audit rows of `user` with outcome `refused`, as (command, detail).
async fn refusals_of(app: &TestApp, user: &str) -> Vec<(String, String)> {
    app.audit()
        .await
        .into_iter()
        .filter(|a| a.actor == user && a.outcome == "refused")
        .map(|a| (a.command, a.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_roles_nobody_acks_resolves_escalates_or_notes_and_responders_do() {
    let app = spawn_app(sns_options(
        |s: &mut SettingsFile| {
            s.roles
                .insert("responders".into(), vec![RESPONDERS_GROUP.into()]);
            // Listed the other way round from the defaults: the refusal
            // names them as the config does.
            s.permissions.incidents = vec!["operators".into(), "responders".into()];
        },
        None,
    ))
    .await;
    app.slack.set_group(RESPONDERS_GROUP, &[RESPONDER]);
    let id = open_incident(&app, "perm-alarm").await;
    let store = app.engine.store();

    // Every verb that acts, typed: refused in the ack, which only the
    // stranger sees; no job is started.
    for verb in [
        "ack",
        "resolve",
        "escalate",
        "keep",
        "note wake everyone up",
    ] {
        let ack = app
            .command(&format!("incident {id} {verb}"), STRANGER, "C0PERM")
            .await;
        assert_eq!(ack["response_type"], "ephemeral", "{verb}: {ack}");
        assert_eq!(
            ack["text"].as_str(),
            Some(INCIDENT_REFUSAL),
            "{verb}: {ack}"
        );
    }
    // And every incident button.
    for action in ["incident.ack", "incident.escalate", "incident.resolve"] {
        assert_eq!(app.click(STRANGER, INCIDENTS, action, &id).await, 200);
    }
    let told = app
        .slack
        .wait_for(20, "three refusals only the stranger sees", |s| {
            let e = s.ephemerals(STRANGER);
            (e.len() >= 3).then_some(e)
        })
        .await;
    for e in &told {
        assert_eq!(e["channel"], INCIDENTS, "{e}");
        assert!(message_text(e).contains(INCIDENT_REFUSAL), "{e}");
    }

    // Audited, each with the roles it lacked.
    let mut refused = refusals_of(&app, STRANGER).await;
    refused.sort();
    let mut expected: Vec<(String, String)> = [
        format!("acknowledge {id}"),
        format!("escalate {id}"),
        format!("incident {id} ack"),
        format!("incident {id} escalate"),
        format!("incident {id} keep"),
        format!("incident {id} note wake everyone up"),
        format!("incident {id} resolve"),
        format!("resolve {id}"),
    ]
    .into_iter()
    .map(|c| (c, "not in role operators or responders".to_owned()))
    .collect();
    expected.sort();
    assert_eq!(refused, expected);

    // Nothing changed: the incident, its events, its thread, the channel.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let incident = store.incident(&id).await.expect("read").expect("row");
    assert_eq!(incident.state, IncidentState::Open);
    assert_eq!(incident.level, 1);
    assert_eq!((incident.acked_ms, incident.resolved_ms), (None, None));
    let events = store.incident_events(&id).await.expect("events");
    assert!(
        events.iter().all(|e| e.actor != STRANGER),
        "no event of the stranger's: {events:?}"
    );
    let everything = [app.slack.posts(INCIDENTS), app.slack.posts("C0PERM")].concat();
    for post in &everything {
        let text = message_text(post);
        assert!(
            !text.contains(STRANGER) && !text.contains("wake everyone up"),
            "{text}"
        );
    }
    assert!(
        app.slack.calls("chat.update").iter().all(|u| {
            let text = message_text(&u.args);
            !text.contains("Acknowledged") && !text.contains("Resolved")
        }),
        "the root message was not redrawn as acknowledged or resolved"
    );

    // Looking stays open to whoever may read.
    let ack = app
        .command(&format!("incident {id} status"), STRANGER, "C0PERM")
        .await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("⏳ Running"),
        "{ack}"
    );
    let ack = app.command("incidents", STRANGER, "C0PERM").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("⏳ Running"),
        "{ack}"
    );
    app.slack
        .wait_for(20, "the list for the stranger", |s| {
            s.posts("C0PERM")
                .into_iter()
                .find(|p| message_text(p).contains("Open incidents: 1"))
        })
        .await;

    // An operator by button, a responder (through the user group) by
    // command: both work as before.
    assert_eq!(
        app.click(OPERATOR, INCIDENTS, "incident.ack", &id).await,
        200
    );
    app.wait_incident_post("Acknowledged by <@U0OPS>").await;
    app.command(
        &format!("incident {id} note rolled back the deploy"),
        RESPONDER,
        "C0PERM",
    )
    .await;
    app.wait_incident_post("rolled back the deploy").await;
    app.command(&format!("incident {id} escalate"), RESPONDER, "C0PERM")
        .await;
    app.wait_incident_post("Escalated to L2 operations team")
        .await;
    app.command(&format!("incident {id} resolve"), RESPONDER, "C0PERM")
        .await;
    app.wait_incident_post("Resolved by <@U0RESP>").await;
    let incident = store.incident(&id).await.expect("read").expect("row");
    assert_eq!(incident.state, IncidentState::Resolved);
    assert!(refusals_of(&app, RESPONDER).await.is_empty());
    assert!(refusals_of(&app, OPERATOR).await.is_empty());
    app.stop().await;
}

/// The shipped commands, with `role = "operators"` added to one of them.
fn commands_with_a_role(dir: &std::path::Path, command: &str) -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = dir.join("commands");
    std::fs::create_dir_all(&out).expect("mkdir");
    for entry in std::fs::read_dir(format!("{root}/commands")).expect("commands") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("a name").to_owned();
        let mut text = std::fs::read_to_string(&path).expect("read");
        if name.to_string_lossy() == format!("{command}.toml") {
            // A file without tables: a key at its end is top-level.
            assert!(!text.contains('['), "{command}.toml has tables");
            text.push_str("role = \"operators\"\n");
        }
        std::fs::write(out.join(name), text).expect("write");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_is_refused_where_restricted_and_a_command_file_names_its_own_role() {
    const VIEWER: &str = "U0VIEWER";
    let dir = tempfile::tempdir().expect("tempdir");
    let commands = commands_with_a_role(dir.path(), "incidents");
    let app = spawn_app(Options {
        tweak: Some(Box::new(move |s: &mut SettingsFile| {
            s.catalog.commands_dir = commands;
            s.roles.insert("viewers".into(), vec![VIEWER.into()]);
            s.roles.insert("operators".into(), vec![OPERATOR.into()]);
            s.permissions.read = Some(vec!["viewers".into(), "operators".into()]);
        })),
        ..Options::default()
    })
    .await;
    let refused = |ack: &Value, command: &str, roles: &str| {
        assert_eq!(ack["response_type"], "ephemeral", "{ack}");
        assert_eq!(
            ack["text"].as_str().unwrap_or_default(),
            format!("🚫 Only people {roles} can run `/scale {command}`."),
        );
    };
    let readers = "in role `viewers` or in role `operators`";
    let ack = app
        .command("throttles persona-api", STRANGER, "C0READ")
        .await;
    refused(&ack, "throttles", readers);
    // Asking for a plan reads AWS too.
    let ack = app.command("scale-down", STRANGER, "C0READ").await;
    refused(&ack, "scale-down", readers);
    let ack = app
        .command("incident INC-ANY status", STRANGER, "C0READ")
        .await;
    refused(&ack, "incident", readers);
    // The file's own role, whatever the reading roles.
    let ack = app.command("incidents", VIEWER, "C0READ").await;
    refused(&ack, "incidents", "in role `operators`");
    // Help reads nothing and stays open.
    let ack = app.command("help", STRANGER, "C0READ").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .contains("throttles"),
        "{ack}"
    );

    // The reading roles read.
    let ack = app.command("throttles persona-api", VIEWER, "C0READ").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("⏳ Running"),
        "{ack}"
    );
    let ack = app.command("incidents", OPERATOR, "C0READ").await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("⏳ Running"),
        "{ack}"
    );
    app.slack
        .wait_for(20, "the operator's list", |s| {
            s.posts("C0READ")
                .into_iter()
                .find(|p| message_text(p).contains("Open incidents: 0"))
        })
        .await;

    let mut refusals = refusals_of(&app, STRANGER).await;
    refusals.sort();
    let detail = "not in role viewers or operators".to_owned();
    assert_eq!(
        refusals,
        [
            ("incident INC-ANY status".to_owned(), detail.clone()),
            ("scale-down".to_owned(), detail.clone()),
            ("throttles persona-api".to_owned(), detail),
        ]
    );
    assert_eq!(
        refusals_of(&app, VIEWER).await,
        [("incidents".to_owned(), "not in role operators".to_owned())]
    );
    // Nothing was planned, and nothing posted for the refused.
    let plans = app.engine.store().recent_plans(10).await.expect("plans");
    assert!(plans.is_empty(), "{plans:?}");
    app.stop().await;
}

const OTHER_GUILD: &str = "1100000000000000999";

/// A `/scale incidents` interaction from `user`, in `guild` (`None`: a DM).
fn discord_command(id: &str, user: &str, guild: Option<&str>) -> Value {
    let mut ix = json!({
        "type": 2, "id": id, "application_id": APPLICATION_ID, "token": format!("tok-{id}"),
        "version": 1, "channel_id": "1500000000000000001",
        "data": {"id": "1900000000000000001", "name": "scale", "type": 1,
                 "options": [{"name": "incidents", "type": 1, "options": []}]},
        "locale": "en-US", "app_permissions": "2147483647",
    });
    let who = json!({"id": user, "username": "someone", "discriminator": "0", "global_name": null, "avatar": null});
    match guild {
        Some(g) => {
            ix["guild_id"] = json!(g);
            ix["channel"] = json!({"id": "1500000000000000001", "type": 0, "guild_id": g});
            ix["member"] = json!({"user": who, "roles": [], "permissions": "0",
                                  "joined_at": "2025-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false});
        }
        None => {
            ix["channel"] = json!({"id": "1500000000000000001", "type": 1});
            ix["user"] = who;
        }
    }
    ix
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_answers_only_in_its_own_server() {
    const MEMBER: &str = "1700000000000000002";
    let app = spawn_app(Options {
        discord: true,
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            s.channels.incidents = "1500000000000000002".into();
        })),
        ..Options::default()
    })
    .await;
    let private = |answer: &Value, needle: &str| {
        assert_eq!(answer["type"], 4, "{answer}");
        assert_eq!(
            answer["data"]["flags"], 64,
            "only the sender sees it: {answer}"
        );
        let content = answer["data"]["content"].as_str().unwrap_or_default();
        assert!(
            content.starts_with("🚫 ") && content.contains(needle),
            "{answer}"
        );
    };
    let dm = app
        .discord_interaction(&discord_command("1990000000000000001", MEMBER, None))
        .await;
    private(&dm, "does not answer in direct messages");
    let foreign = app
        .discord_interaction(&discord_command(
            "1990000000000000002",
            MEMBER,
            Some(OTHER_GUILD),
        ))
        .await;
    private(&foreign, "only in its own server");
    // A click on an incident button from another server.
    let mut click = discord_command("1990000000000000003", MEMBER, Some(OTHER_GUILD));
    click["type"] = json!(3);
    click["data"] = json!({"custom_id": "incident.ack|INC-ANY1", "component_type": 2});
    click["message"] = json!({"id": "1800000000000000099", "channel_id": "1500000000000000001",
                              "content": "", "embeds": [], "components": [], "flags": 0});
    private(
        &app.discord_interaction(&click).await,
        "only in its own server",
    );
    // An autocomplete from a DM gets no choices.
    let mut auto = discord_command("1990000000000000004", MEMBER, None);
    auto["type"] = json!(4);
    auto["data"]["options"][0] = json!({"name": "throttles", "type": 1,
        "options": [{"name": "function", "type": 3, "value": "pers", "focused": true}]});
    let answer = app.discord_interaction(&auto).await;
    assert_eq!(answer, json!({"type": 8, "data": {"choices": []}}));

    // None of them reached a service: no audit row, nothing posted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.audit().await.is_empty(),
        "nothing was audited as a command"
    );
    let posted: Vec<String> = app
        .fake_discord()
        .calls()
        .into_iter()
        .filter(|c| c.method != "GET")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert!(posted.is_empty(), "{posted:?}");

    // In the bot's own server the same command runs.
    let ours = app
        .discord_interaction(&discord_command(
            "1990000000000000005",
            MEMBER,
            Some(GUILD_ID),
        ))
        .await;
    assert_eq!(ours["type"], 4, "{ours}");
    assert!(ours["data"].to_string().contains("Running"), "{ours}");
    let audit = app.audit().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].command.as_str()),
        (MEMBER, "incidents")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_scale_is_registered_for_servers_only() {
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
    for guild in [Some(GUILD_ID), None] {
        scalebot::discord::register(&settings.discord, &token, &catalog, guild)
            .await
            .expect("registered");
    }
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        let scale = &call.body[0];
        assert_eq!(scale["name"], "scale");
        // GUILD only: no bot DMs, no private channels, no user installs.
        assert_eq!(scale["contexts"], json!([0]), "{}", call.path);
        assert_eq!(scale["integration_types"], json!([0]), "{}", call.path);
    }
}

fn scalebot_check(dir: &std::path::Path, config: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scalebot"))
        .args(["check", "--config", config])
        .current_dir(dir)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_prints_who_may_do_what_and_names_roles_nobody_defined() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, stdout) = scalebot_check(root, "config/scalebot.example.toml");
    assert!(ok, "{stdout}");
    for line in [
        "who may do what:",
        "control incidents (ack, escalate, resolve, keep, note, and their buttons): \
         role responders (nobody) or role operators (S0123OPS)",
        "read AWS data and view incidents: everyone",
        "/scale scale-down: asked by everyone; confirmed by 2 people of role operators \
         (S0123OPS), not the requester",
        "/scale concurrency: asked by everyone; confirmed by 1 person of role operators (S0123OPS)",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let commands = commands_with_a_role(dir.path(), "incidents");
    let config = format!(
        "[catalog]\ncommands_dir = {commands:?}\ncharts_dir = {charts:?}\n\
         [roles]\noperators = [\"U0OPS\"]\nviewers = [\"U0VIEW\"]\n\
         [permissions]\nread = [\"viewers\", \"auditors\"]\n",
        charts = root.join("charts"),
    );
    std::fs::write(dir.path().join("ok.toml"), &config).expect("write");
    let (ok, stdout) = scalebot_check(dir.path(), "ok.toml");
    assert!(!ok, "auditors is no role: {stdout}");
    assert!(
        stdout.contains("ok.toml: key `permissions.read`: role `auditors` is not in the [roles]"),
        "{stdout}"
    );
    let config = config.replace(", \"auditors\"", "");
    std::fs::write(dir.path().join("ok.toml"), &config).expect("write");
    let (ok, stdout) = scalebot_check(dir.path(), "ok.toml");
    assert!(ok, "{stdout}");
    for line in [
        "read AWS data and view incidents: role viewers (U0VIEW)",
        "/scale incidents: role operators (U0OPS)",
        // `responders` comes from the defaults, empty.
        "role responders (nobody) or role operators (U0OPS)",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
