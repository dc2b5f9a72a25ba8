//! Changing commands: plan, confirmation by a permitted person through
//! signed `block_actions`, exactly-once execution, drift, expiry, undo,
//! dry run and guardrails — all through the real server, AWS in moto.

use crate::support::app::{INCIDENTS, Options, TestApp, message_text, spawn_app};
use crate::support::moto;
use scalebot::domain::FunctionName;
use scalebot::settings_file::SettingsFile;

const OPS: &str = "U0OPERATOR";
const OPS2: &str = "U0OPERATOR2";
const REQ: &str = "U0REQUESTER";

fn roles(s: &mut SettingsFile) {
    s.roles.insert(
        "operators".into(),
        vec![OPS.into(), OPS2.into(), REQ.into(), "S0OPSGROUP".into()],
    );
}

async fn app_with(tweak: impl FnOnce(&mut SettingsFile) + Send + 'static) -> TestApp {
    spawn_app(Options {
        tweak: Some(Box::new(move |s: &mut SettingsFile| {
            roles(s);
            tweak(s);
        })),
        ..Options::default()
    })
    .await
}

async fn aws_calls(app: &TestApp, operation: &str) -> String {
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "scalebot_aws_calls_total{{operation=\"{operation}\",outcome=\"ok\"}}"
            ))
        })
        .map(|l| l.rsplit(' ').next().unwrap_or("0").to_owned())
        .unwrap_or_else(|| "0".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_plan_runs_once_and_is_threaded() {
    let aws = moto::url();
    moto::create_function(&aws, "confirm-fn", Some(50)).await;
    let app = app_with(|_| {}).await;

    app.command("concurrency confirm-fn 80", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("concurrency confirm-fn 80").await;
    let text = message_text(&post);
    assert!(
        text.contains("50 → 80"),
        "current and proposed values: {text}"
    );
    assert!(text.contains("Account concurrency"), "account note: {text}");
    assert!(
        post["thread_ts"].is_string(),
        "the plan is a reply in the incident thread"
    );
    let root = app
        .wait_incident_post("Manual intervention: /scale concurrency confirm-fn 80")
        .await;
    assert_eq!(post["thread_ts"], root["_ts"]);
    let pointer = app
        .slack
        .wait_for(10, "the pointer in the invoking channel", |s| {
            s.posts("C0OPS").into_iter().next()
        })
        .await;
    assert!(message_text(&pointer).contains(&plan), "{pointer}");

    // Someone without the role: refused, nothing changes.
    assert_eq!(
        app.click("U0STRANGER", INCIDENTS, "plan.confirm", &plan)
            .await,
        200
    );
    let refusal = app
        .slack
        .wait_for(10, "the refusal", |s| {
            s.ephemerals("U0STRANGER").into_iter().next()
        })
        .await;
    assert!(
        message_text(&refusal).contains("Only people in role `operators`"),
        "{refusal}"
    );
    assert_eq!(moto::reserved(&aws, "confirm-fn").await, Some(50));

    assert_eq!(app.click(OPS, INCIDENTS, "plan.confirm", &plan).await, 200);
    let done = app
        .wait_incident_post("reserved concurrency of `confirm-fn` is now 80")
        .await;
    assert!(
        message_text(&done).contains(&format!("/scale undo {plan}")),
        "{done}"
    );
    assert_eq!(moto::reserved(&aws, "confirm-fn").await, Some(80));
    let update = app
        .slack
        .wait_for(10, "the plan message updated", |s| {
            s.latest_update(post["_ts"].as_str().unwrap_or_default())
                .filter(|u| message_text(u).contains("Executed"))
        })
        .await;
    assert!(
        update["blocks"].to_string().find("plan.confirm").is_none(),
        "buttons removed: {update}"
    );

    // A second click does nothing a second time.
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.slack
        .wait_for(10, "the second click's answer", |s| {
            s.ephemerals(OPS)
                .into_iter()
                .find(|e| message_text(e).contains("is done"))
        })
        .await;
    assert_eq!(aws_calls(&app, "lambda:PutFunctionConcurrency").await, "1");

    // The monitor step reports and attaches a before/after chart. moto
    // holds no metrics for this function: its last check says so, never
    // "settled" (tests/api/watch.rs has both outcomes).
    app.slack
        .wait_for(90, "the watch's no-data verdict", |s| {
            s.posts(INCIDENTS).into_iter().find(|p| {
                message_text(p).contains("CloudWatch had no `Throttles` data for `confirm-fn`")
            })
        })
        .await;
    let chart = app
        .slack
        .wait_for(20, "the after chart", |s| {
            s.uploads()
                .into_iter()
                .find(|u| u.filename.starts_with("after-confirm-fn"))
        })
        .await;
    assert_eq!(chart.thread_ts.as_deref(), root["_ts"].as_str());

    // Every step is a row in the store.
    let incident = app
        .engine
        .store()
        .open_incidents()
        .await
        .expect("incidents");
    let events = app
        .engine
        .store()
        .incident_events(&incident[0].id)
        .await
        .expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "opened",
        "acknowledged",
        "plan",
        "confirmed",
        "executed",
        "monitor",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    // The requester is on it: acknowledged from the start, nobody reminded.
    assert_eq!(incident[0].state.as_str(), "acknowledged");
    assert_eq!(incident[0].acked_ms, Some(incident[0].opened_ms));
    let audit = app.audit().await;
    assert!(audit.iter().any(|a| a.command == format!("confirm {plan}")
        && a.outcome == "refused"
        && a.actor == "U0STRANGER"));
    assert!(audit.iter().any(|a| a.command == format!("confirm {plan}")
        && a.outcome == "approved"
        && a.actor == OPS));
    app.stop().await;
}

async fn fifty_clicks(app: &TestApp, function: &str) {
    let aws = moto::url();
    moto::create_function(&aws, function, Some(20)).await;
    let cmd = format!("concurrency {function} 30");
    app.command(&cmd, REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan(&cmd).await;
    let mut clicks = Vec::new();
    for _ in 0..50 {
        let plan = plan.clone();
        let http = app.http.clone();
        let base = app.base.clone();
        clicks.push(tokio::spawn(async move {
            let payload = serde_json::json!({
                "type": "block_actions", "user": {"id": OPS}, "channel": {"id": INCIDENTS},
                "actions": [{"action_id": "plan.confirm", "value": plan, "type": "button"}]
            });
            let body =
                serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
            let ts = chrono::Utc::now().timestamp();
            http.post(format!("{base}/slack/interactions"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts.to_string())
                .header(
                    "x-slack-signature",
                    crate::support::app::sign(crate::support::app::SIGNING_SECRET, ts, &body),
                )
                .body(body)
                .send()
                .await
                .expect("click")
                .status()
        }));
    }
    for c in clicks {
        assert_eq!(c.await.expect("join"), 200);
    }
    app.wait_incident_post(&format!("reserved concurrency of `{function}` is now 30"))
        .await;
    // Let every click finish before counting.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        aws_calls(app, "lambda:PutFunctionConcurrency").await,
        "1",
        "exactly one AWS call"
    );
    let executed = app
        .slack
        .posts(INCIDENTS)
        .into_iter()
        .filter(|p| {
            message_text(p).contains(&format!("reserved concurrency of `{function}` is now 30"))
        })
        .count();
    assert_eq!(executed, 1, "one result message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_confirms_make_one_aws_call_on_sqlite() {
    let app = app_with(|_| {}).await;
    fifty_clicks(&app, "race-sqlite-fn").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_confirms_make_one_aws_call_on_postgres() {
    let url = crate::store::postgres_url().await;
    let app = spawn_app(Options {
        tweak: Some(Box::new(roles)),
        store_url: Some(url),
        ..Options::default()
    })
    .await;
    fifty_clicks(&app, "race-pg-fn").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_expiry_change_nothing() {
    let aws = moto::url();
    moto::create_function(&aws, "cancel-fn", Some(40)).await;
    let app = app_with(|s| s.runbook.plan_ttl_seconds = 2).await;

    app.command("concurrency cancel-fn 45", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("concurrency cancel-fn 45").await;
    // Someone neither the requester nor an operator cannot cancel it.
    app.click("U0STRANGER", INCIDENTS, "plan.cancel", &plan)
        .await;
    app.slack
        .wait_for(10, "a stranger's cancel is refused", |s| {
            s.ephemerals("U0STRANGER").into_iter().find(|e| {
                let text = message_text(e);
                text.contains("can cancel plan") && text.contains("Nothing was changed.")
            })
        })
        .await;
    let row = app
        .engine
        .store()
        .plan(&plan)
        .await
        .expect("read")
        .expect("plan");
    assert_eq!(
        row.state.as_str(),
        "pending",
        "the stranger's click changed nothing"
    );
    app.click(REQ, INCIDENTS, "plan.cancel", &plan).await;
    app.wait_incident_post(&format!("Plan `{plan}`: ✖️ Cancelled by"))
        .await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.slack
        .wait_for(10, "confirming a cancelled plan is refused", |s| {
            s.ephemerals(OPS)
                .into_iter()
                .find(|e| message_text(e).contains("is cancelled"))
        })
        .await;
    assert!(
        app.slack
            .latest_update(post["_ts"].as_str().unwrap_or_default())
            .is_some()
    );

    app.command("concurrency cancel-fn 46", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("concurrency cancel-fn 46").await;
    app.wait_incident_post(&format!("Plan `{plan}`: ⌛ Expired"))
        .await;
    let update = app
        .slack
        .latest_update(post["_ts"].as_str().unwrap_or_default())
        .expect("the plan message is updated");
    assert!(message_text(&update).contains("Expired"), "{update}");
    assert!(
        !update["blocks"].to_string().contains("plan.confirm"),
        "no buttons left"
    );
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.slack
        .wait_for(10, "a click on an expired plan", |s| {
            s.ephemerals(OPS)
                .into_iter()
                .find(|e| message_text(e).contains("is expired"))
        })
        .await;
    assert_eq!(moto::reserved(&aws, "cancel-fn").await, Some(40));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_must_approve_and_the_requester_cannot() {
    let aws = moto::url();
    moto::create_function(&aws, "two-fn", Some(10)).await;
    let dir = two_person_catalog();
    let commands = dir.path().to_owned();
    let app = app_with(move |s| s.catalog.commands_dir = commands).await;
    app.slack.set_group("S0OPSGROUP", &["U0GROUPMEMBER"]);

    app.command("concurrency two-fn 12", REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan("concurrency two-fn 12").await;
    app.click(REQ, INCIDENTS, "plan.confirm", &plan).await;
    app.slack
        .wait_for(10, "self-approval refused", |s| {
            s.ephemerals(REQ)
                .into_iter()
                .find(|e| message_text(e).contains("You requested plan"))
        })
        .await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("approved plan").await;
    assert_eq!(
        moto::reserved(&aws, "two-fn").await,
        Some(10),
        "one approval is not enough"
    );
    // The second person is in the role through a Slack user group.
    app.click("U0GROUPMEMBER", INCIDENTS, "plan.confirm", &plan)
        .await;
    app.wait_incident_post("reserved concurrency of `two-fn` is now 12")
        .await;
    assert_eq!(moto::reserved(&aws, "two-fn").await, Some(12));
    app.stop().await;
}

/// The shipped catalog with every changing command needing two approvals.
fn two_person_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    for entry in std::fs::read_dir(format!("{root}/commands")).expect("commands") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text.replace("approvals = 1", "approvals = 2");
        std::fs::write(dir.path().join(path.file_name().expect("name")), text).expect("write");
    }
    dir
}

/// `[people]`: a person's second account neither approves twice nor gets
/// the requester past the exclusion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_of_one_person_are_one_approval() {
    const OPS_OTHER: &str = "W0OPERATOR";
    const REQ_OTHER: &str = "W0REQUESTER";
    let aws = moto::url();
    moto::create_function(&aws, "people-fn", Some(10)).await;
    let catalog = two_person_catalog();
    let commands = catalog.path().to_owned();
    let app = app_with(move |s| {
        s.catalog.commands_dir = commands;
        let operators = s.roles.get_mut("operators").expect("operators");
        operators.extend([OPS_OTHER.to_owned(), REQ_OTHER.to_owned()]);
        s.people = scalebot::domain::people::People::new([
            ("olga", "slack", OPS),
            ("olga", "slack", OPS_OTHER),
            ("rita", "slack", REQ),
            ("rita", "slack", REQ_OTHER),
        ])
        .expect("people");
    })
    .await;

    app.command("concurrency people-fn 12", REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan("concurrency people-fn 12").await;
    // The requester from her other account is still the requester.
    app.click(REQ_OTHER, INCIDENTS, "plan.confirm", &plan).await;
    app.slack
        .wait_for(10, "self-approval refused", |s| {
            s.ephemerals(REQ_OTHER)
                .into_iter()
                .find(|e| message_text(e).contains("You requested plan"))
        })
        .await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("approved plan").await;
    // The same person again, from another account: no second approval.
    app.click(OPS_OTHER, INCIDENTS, "plan.confirm", &plan).await;
    app.slack
        .wait_for(10, "already approved", |s| {
            s.ephemerals(OPS_OTHER)
                .into_iter()
                .find(|e| message_text(e).contains("You have already approved plan"))
        })
        .await;
    assert_eq!(
        moto::reserved(&aws, "people-fn").await,
        Some(10),
        "one person with two accounts is one approval"
    );
    let store = scalebot::store::Store::connect(&scalebot::config::StoreSettings {
        url: app.store_url.clone(),
        max_connections: 1,
    })
    .await
    .expect("store");
    assert_eq!(store.approvals(&plan).await.expect("approvals"), [OPS]);
    // A second person makes two.
    app.click(OPS2, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("reserved concurrency of `people-fn` is now 12")
        .await;
    assert_eq!(moto::reserved(&aws, "people-fn").await, Some(12));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_between_plan_and_click_asks_again() {
    let aws = moto::url();
    moto::create_function(&aws, "drift-fn", Some(50)).await;
    let app = app_with(|_| {}).await;
    app.command("concurrency drift-fn 90", REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan("concurrency drift-fn 90").await;
    moto::set_reserved(&aws, "drift-fn", 60).await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    let drift = app.wait_incident_post("AWS changed since plan").await;
    assert!(
        message_text(&drift).contains("was 50 when planned and is 60 now"),
        "{drift}"
    );
    let fresh = app
        .slack
        .wait_for(20, "a fresh plan", |s| {
            s.posts(INCIDENTS).into_iter().find(|p| {
                let t = message_text(p);
                t.starts_with("Plan P-") && !t.contains(&plan) && t.contains("60 → 90")
            })
        })
        .await;
    assert!(fresh["thread_ts"].is_string());
    assert_eq!(
        moto::reserved(&aws, "drift-fn").await,
        Some(60),
        "nothing executed"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_someone_made_meanwhile_is_not_proposed_again() {
    let aws = moto::url();
    moto::create_function(&aws, "made-fn", Some(50)).await;
    let app = app_with(|_| {}).await;
    app.command("concurrency made-fn 90", REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan("concurrency made-fn 90").await;
    // Someone set it by hand before the click.
    moto::set_reserved(&aws, "made-fn", 90).await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    let drift = app.wait_incident_post("AWS changed since plan").await;
    let text = message_text(&drift);
    assert!(text.contains("was 50 when planned and is 90 now"), "{text}");
    assert!(text.contains("no new plan is needed"), "{text}");
    // Give a fresh plan time to appear, then make sure none did.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let proposals: Vec<String> = app
        .slack
        .posts(INCIDENTS)
        .iter()
        .map(message_text)
        .filter(|t| t.starts_with("Plan P-") && !t.contains(&plan))
        .collect();
    assert!(proposals.is_empty(), "{proposals:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrails_refuse_with_the_limit_named() {
    let aws = moto::url();
    moto::create_function(&aws, "guard-fn", Some(10)).await;
    let app = app_with(|s| {
        s.functions.insert(
            FunctionName::parse("guard-fn").expect("a name"),
            scalebot::config::FunctionSettings {
                max_reserved: 100,
                ..Default::default()
            },
        );
    })
    .await;
    app.command("concurrency guard-fn 500", REQ, "C0GUARD")
        .await;
    let post = app
        .slack
        .wait_for(20, "the refusal", |s| s.posts("C0GUARD").into_iter().next())
        .await;
    let text = message_text(&post);
    assert!(
        text.contains("outside the guardrail for `guard-fn`"),
        "{text}"
    );
    assert!(text.contains("0–100"), "{text}");
    assert!(
        app.slack.posts(INCIDENTS).is_empty(),
        "no plan, no incident"
    );
    assert_eq!(moto::reserved(&aws, "guard-fn").await, Some(10));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_says_so_and_changes_nothing() {
    let aws = moto::url();
    moto::create_function(&aws, "dry-fn", Some(10)).await;
    let app = app_with(|s| s.runbook.dry_run = true).await;
    app.command("concurrency dry-fn 20", REQ, "C0OPS").await;
    let (plan, post) = app.wait_plan("concurrency dry-fn 20").await;
    assert!(message_text(&post).contains("DRY RUN"), "{post}");
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("DRY RUN: would change").await;
    assert_eq!(moto::reserved(&aws, "dry-fn").await, Some(10));
    assert_eq!(aws_calls(&app, "lambda:PutFunctionConcurrency").await, "0");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_reverts_through_the_same_confirmation() {
    let aws = moto::url();
    moto::create_function(&aws, "undo-fn", Some(15)).await;
    let app = app_with(|_| {}).await;
    app.command("concurrency undo-fn 25", REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan("concurrency undo-fn 25").await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("reserved concurrency of `undo-fn` is now 25")
        .await;

    app.command(&format!("undo {plan}"), REQ, "C0OPS").await;
    let (undo, post) = app.wait_plan(&format!("undo {plan}")).await;
    assert!(message_text(&post).contains("25 → 15"), "{post}");
    assert_eq!(
        moto::reserved(&aws, "undo-fn").await,
        Some(25),
        "not before confirmation"
    );
    app.click(OPS, INCIDENTS, "plan.confirm", &undo).await;
    app.wait_incident_post("reserved concurrency of `undo-fn` is now 15")
        .await;
    assert_eq!(moto::reserved(&aws, "undo-fn").await, Some(15));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throttles_button_leads_to_a_plan() {
    let aws = moto::url();
    moto::create_function(&aws, "button-fn", Some(40)).await;
    let app = app_with(|_| {}).await;
    app.command("throttles button-fn", REQ, "C0BTN").await;
    let post = app
        .slack
        .wait_for(30, "the throttles reply", |s| {
            s.posts("C0BTN").into_iter().next()
        })
        .await;
    let blocks = post["blocks"].to_string();
    // No concurrency figures in moto for it: the floor, 100.
    assert!(
        blocks.contains("Raise reserved concurrency to 100"),
        "{blocks}"
    );
    app.click(REQ, "C0BTN", "run", "concurrency button-fn auto")
        .await;
    let (_, plan) = app.wait_plan("concurrency button-fn auto").await;
    assert!(message_text(&plan).contains("40 → 100"), "{plan}");
    assert!(
        message_text(&plan).contains("no peak to go by → floor 100"),
        "{plan}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_concurrency_on_latest_is_refused_before_aws() {
    let app = app_with(|_| {}).await;
    let ack = app
        .command("provisioned persona-api $LATEST 5", REQ, "C0OPS")
        .await;
    let text = ack["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("does not allow provisioned concurrency on `$LATEST`"),
        "{text}"
    );
    app.stop().await;
}

/// A two-person change cannot be taken back on one person's word: its
/// undo needs two approvals (not the requester), and so does the undo of
/// that undo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_needs_the_approvals_of_the_plan_it_reverts() {
    let aws = moto::url();
    moto::create_function(&aws, "undo2-fn", Some(10)).await;
    // Only `concurrency` needs two people; `undo` keeps its one.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    for entry in std::fs::read_dir(format!("{root}/commands")).expect("commands") {
        let path = entry.expect("entry").path();
        let mut text = std::fs::read_to_string(&path).expect("read");
        if path.file_name().is_some_and(|n| n == "concurrency.toml") {
            text = text.replace("approvals = 1", "approvals = 2");
        }
        std::fs::write(dir.path().join(path.file_name().expect("name")), text).expect("write");
    }
    let commands = dir.path().to_owned();
    let app = app_with(move |s| s.catalog.commands_dir = commands).await;

    app.command("concurrency undo2-fn 12", REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan("concurrency undo2-fn 12").await;
    app.click(OPS, INCIDENTS, "plan.confirm", &plan).await;
    app.click(OPS2, INCIDENTS, "plan.confirm", &plan).await;
    app.wait_incident_post("reserved concurrency of `undo2-fn` is now 12")
        .await;

    app.command(&format!("undo {plan}"), OPS, "C0OPS").await;
    let (undo, post) = app.wait_plan(&format!("undo {plan}")).await;
    assert!(
        message_text(&post).contains("2 people in role `operators`, not the requester"),
        "{post}"
    );
    app.click(OPS, INCIDENTS, "plan.confirm", &undo).await;
    app.slack
        .wait_for(10, "self-approval refused", |s| {
            s.ephemerals(OPS)
                .into_iter()
                .find(|e| message_text(e).contains("You requested plan"))
        })
        .await;
    app.click(OPS2, INCIDENTS, "plan.confirm", &undo).await;
    app.wait_incident_post(&format!("approved plan `{undo}`"))
        .await;
    assert_eq!(
        moto::reserved(&aws, "undo2-fn").await,
        Some(12),
        "one approval does not take back a two-person change"
    );
    app.click(REQ, INCIDENTS, "plan.confirm", &undo).await;
    app.wait_incident_post("reserved concurrency of `undo2-fn` is now 10")
        .await;

    // Undoing the undo is the original change again: two people.
    app.command(&format!("undo {undo}"), OPS, "C0OPS").await;
    let (_, post) = app.wait_plan(&format!("undo {undo}")).await;
    assert!(
        message_text(&post).contains("2 people in role `operators`, not the requester"),
        "{post}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_left_executing_by_a_dead_replica_is_reconciled_from_aws() {
    let aws = moto::url();
    moto::create_function(&aws, "reap-fn", Some(50)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("reap.db").display());
    let replica = |url: String| {
        spawn_app(Options {
            store_url: Some(url),
            tweak: Some(Box::new(roles)),
            ..Options::default()
        })
    };
    let first = replica(url.clone()).await;
    first.command("concurrency reap-fn 80", REQ, "C0OPS").await;
    let (plan, _) = first.wait_plan("concurrency reap-fn 80").await;
    first.stop().await;
    // As if a replica had claimed it, changed AWS and died before it
    // recorded anything: executing, under a lease that has run out.
    let store = scalebot::store::Store::connect(&scalebot::config::StoreSettings {
        url: url.clone(),
        max_connections: 2,
    })
    .await
    .expect("store");
    sqlx::query(
        "UPDATE plans SET state = 'executing', exec_holder = 'dead-replica', exec_lease_ms = $1 WHERE id = $2",
    )
    .bind(chrono::Utc::now().timestamp_millis() - 1)
    .bind(&plan)
    .execute(store.pool())
    .await
    .expect("orphaned");
    moto::set_reserved(&aws, "reap-fn", 80).await;

    let second = replica(url).await;
    let told = second
        .wait_incident_post("stopped before it finished")
        .await;
    let text = message_text(&told);
    assert!(text.contains("50 → 80 (found applied)"), "{text}");
    assert!(text.contains(&format!("/scale undo {plan}")), "{text}");
    // Said first, then recorded (a failed post leaves it to be reaped again).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let row = loop {
        let row = second
            .engine
            .store()
            .plan(&plan)
            .await
            .expect("read")
            .expect("plan");
        if row.state.as_str() != "executing" || std::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(row.state.as_str(), "done");
    assert!(
        row.outcome
            .as_deref()
            .is_some_and(|o| o.contains("found applied")),
        "{row:?}"
    );
    // What was found applied can be undone like any executed change.
    second.command(&format!("undo {plan}"), REQ, "C0OPS").await;
    let (_, proposal) = second.wait_plan(&format!("undo {plan}")).await;
    assert!(message_text(&proposal).contains("80 → 50"), "{proposal}");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_after_a_change_outlives_a_restart() {
    let aws = moto::url();
    moto::create_function(&aws, "watch-fn", Some(50)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}", dir.path().join("watch.db").display());
    let options = |store: &String| Options {
        tweak: Some(Box::new(|s: &mut SettingsFile| {
            roles(s);
            // Long enough that the first replica stops before a verdict.
            s.runbook.monitor_interval_seconds = 3;
        })),
        store_url: Some(store.clone()),
        ..Options::default()
    };
    let first = spawn_app(options(&store)).await;
    first.command("concurrency watch-fn 70", REQ, "C0OPS").await;
    let (plan, _) = first.wait_plan("concurrency watch-fn 70").await;
    assert_eq!(
        first.click(OPS, INCIDENTS, "plan.confirm", &plan).await,
        200
    );
    first
        .wait_incident_post("reserved concurrency of `watch-fn` is now 70")
        .await;
    let watching: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM watches WHERE function = 'watch-fn'")
            .fetch_one(first.engine.store().pool())
            .await
            .expect("count"),
        "n",
    )
    .expect("n");
    assert_eq!(watching, 1, "the watch is in the store");
    first.stop().await;

    let second = spawn_app(options(&store)).await;
    second
        .slack
        .wait_for(90, "the watch's verdict after the restart", |s| {
            s.posts(INCIDENTS).into_iter().find(|p| {
                message_text(p).contains("CloudWatch had no `Throttles` data for `watch-fn`")
            })
        })
        .await;
    assert_eq!(moto::reserved(&aws, "watch-fn").await, Some(70));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_could_not_be_posted_is_said_later_not_lost() {
    let aws = moto::url();
    moto::create_function(&aws, "unsaid-fn", Some(50)).await;
    let app = app_with(|_| {}).await;
    app.command("concurrency unsaid-fn 80", REQ, "C0OPS").await;
    let (plan, _) = app.wait_plan("concurrency unsaid-fn 80").await;

    // Slack fails every post while the plan runs: the change is made, but
    // its result cannot be said.
    app.slack.inject_faults(crate::support::slack::Faults {
        seed: 7,
        methods: vec!["chat.postMessage".into()],
        server_errors: 1.0,
        rate_limits: 0.0,
        retry_after_secs: 1,
    });
    assert_eq!(app.click(OPS, INCIDENTS, "plan.confirm", &plan).await, 200);
    let store = app.engine.store();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let result_failed = || {
        app.slack
            .failures("chat.postMessage")
            .iter()
            .any(|f| f.args.to_string().contains("`unsaid-fn` is now 80"))
    };
    while !result_failed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the result was never posted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(moto::reserved(&aws, "unsaid-fn").await, Some(80));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let row = store.plan(&plan).await.expect("read").expect("plan");
    assert_eq!(row.state.as_str(), "done", "recorded before it is said");
    let said = |app: &TestApp| {
        app.slack
            .posts(INCIDENTS)
            .iter()
            .any(|p| message_text(p).contains("`unsaid-fn` is now 80"))
    };
    assert!(!said(&app), "Slack took nothing while it failed");

    // Slack is back: once this replica's lease on the plan runs out, the
    // recorded result is said (by whichever replica takes it).
    app.slack.clear_faults();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !said(&app) {
        assert!(
            std::time::Instant::now() < deadline,
            "the result was never said"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let told = app.wait_incident_post("`unsaid-fn` is now 80").await;
    assert!(
        message_text(&told).contains(&format!("/scale undo {plan}")),
        "{told}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let times = app
        .slack
        .posts(INCIDENTS)
        .iter()
        .filter(|p| message_text(p).contains("`unsaid-fn` is now 80"))
        .count();
    assert_eq!(times, 1, "said once, not at every sweep");
    app.stop().await;
}
