//! Severities through the real server: the config's first matching rule
//! gives an alarm's incident its severity and starting level (its first
//! escalation deadline is that level's), the root message names it, and
//! `/scale incident <id> severity <level>` changes it — by an operator,
//! audited, said in the thread; refused to a viewer and for a word that is
//! no severity. `scalebot check` names a bad rule's file and key.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use scalebot::config::SeverityRule;
use scalebot::domain::glob::Glob;
use scalebot::domain::severity::{Level, Severity};
use scalebot::settings_file::SettingsFile;

use crate::sns::{TOPIC, alarm, deliver, sns_options};
use crate::support::app::{TestApp, message_text, spawn_app};
use crate::support::clock::ManualClock;
use crate::support::sns::SnsSigner;

const OPERATOR: &str = "U0OPS";
const VIEWER: &str = "U0VIEWER";

fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(Utc::now().timestamp(), 0)
        .single()
        .expect("a time")
}

async fn level_of(app: &TestApp, id: &str) -> i64 {
    let row = app.engine.store().incident(id).await.expect("read");
    row.expect("the incident").level
}

async fn level_reaches(app: &TestApp, id: &str, level: i64) {
    for _ in 0..100 {
        if level_of(app, id).await >= level {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never reached L{level}");
}

fn rule(alarm: &str, severity: Severity, level: i64) -> SeverityRule {
    SeverityRule {
        alarm: Some(Glob::parse(alarm).expect("a pattern")),
        metric: None,
        namespace: None,
        severity,
        level: Some(Level::new(level).expect("a level")),
    }
}

async fn app(clock: Arc<ManualClock>) -> TestApp {
    let mut opts = sns_options(
        |s: &mut SettingsFile| {
            s.severities.rules = vec![
                rule("*-critical", Severity::Critical, 2),
                // Never reached for `pay-critical`: the first match wins.
                rule("pay-*", Severity::Low, 1),
            ];
            s.escalation.levels[0].escalate_after_seconds = Some(60);
            s.escalation.levels[1].escalate_after_seconds = Some(3600);
        },
        None,
    );
    opts.clock = Some(clock);
    spawn_app(opts).await
}

async fn fire(app: &TestApp, name: &str, function: &str) {
    let id = format!("msg-{}", uuid::Uuid::new_v4());
    let body = SnsSigner::get().notification(TOPIC, &id, None, &alarm(name, "ALARM", function));
    assert_eq!(deliver(app, &body, &[]).await.0, 200);
}

async fn incident_of(app: &TestApp, title: &str) -> scalebot::store::IncidentRow {
    app.engine
        .store()
        .open_incidents()
        .await
        .expect("open")
        .into_iter()
        .find(|i| i.title == title)
        .expect("the incident")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_alarm_starts_at_its_rules_level_and_its_root_names_the_severity() {
    let start = t0();
    let clock = Arc::new(ManualClock::at(start));
    let app = app(clock.clone()).await;

    fire(&app, "pay-critical", "pay-fn").await;
    let root = app.wait_incident_post("ALARM: pay-critical").await;
    let text = message_text(&root);
    // The badge, not merely the alarm's name.
    assert!(text.contains("🔴 critical"), "severity on the root: {text}");
    assert!(text.contains("L2 operations team"), "starts at L2: {text}");
    let critical = incident_of(&app, "ALARM: pay-critical").await;
    assert_eq!(
        (critical.severity, critical.level),
        (Some(Severity::Critical), 2)
    );
    // No rule matches: the defaults (high, L1).
    fire(&app, "pay-latency", "pay-fn").await;
    fire(&app, "misc-errors", "misc-fn").await;
    app.wait_incident_post("ALARM: misc-errors").await;
    let misc = incident_of(&app, "ALARM: misc-errors").await;
    assert_eq!((misc.severity, misc.level), (Some(Severity::High), 1));
    app.wait_incident_post("ALARM: pay-latency").await;
    let low = incident_of(&app, "ALARM: pay-latency").await;
    assert_eq!((low.severity, low.level), (Some(Severity::Low), 1));

    // Past L1's deadline, not L2's: the L1 incidents move up, the critical
    // one (whose clock is L2's hour) does not.
    clock.set(start + chrono::Duration::seconds(120));
    level_reaches(&app, &misc.id, 2).await;
    level_reaches(&app, &low.id, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(level_of(&app, &critical.id).await, 2, "still L2");
    clock.set(start + chrono::Duration::seconds(3700));
    level_reaches(&app, &critical.id, 3).await;
    assert_eq!(level_of(&app, &misc.id).await, 2, "its L2 hour is not over");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_changes_the_severity_audited_and_a_viewer_cannot() {
    let clock = Arc::new(ManualClock::at(t0()));
    let app = app(clock).await;
    fire(&app, "sev-critical", "sev-fn").await;
    let root = app.wait_incident_post("ALARM: sev-critical").await;
    let ts = root["_ts"].as_str().expect("root ts").to_owned();
    let id = incident_of(&app, "ALARM: sev-critical").await.id;

    // A viewer is refused before anything runs.
    let ack = app
        .command(&format!("incident {id} severity low"), VIEWER, "C0SEV")
        .await;
    assert!(
        ack["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("🚫 Only people"),
        "{ack}"
    );
    // A word that is no severity: a sentence, nothing changed.
    let bad = format!("incident {id} severity urgent");
    app.command(&bad, OPERATOR, "C0SEV").await;
    assert_eq!(app.finished_outcome(&bad).await, "refused");
    assert_eq!(
        incident_of(&app, "ALARM: sev-critical").await.severity,
        Some(Severity::Critical)
    );

    let command = format!("incident {id} severity low");
    app.command(&command, OPERATOR, "C0SEV").await;
    let line = app
        .wait_incident_post("Severity changed from critical to *low* by <@U0OPS>")
        .await;
    assert_eq!(line["thread_ts"], ts.as_str(), "in the thread");
    assert_eq!(app.finished_outcome(&command).await, "ok");
    let row = incident_of(&app, "ALARM: sev-critical").await;
    assert_eq!(
        (row.severity, row.level),
        (Some(Severity::Low), 2),
        "the level stays"
    );
    // The root is redrawn with it.
    let redrawn = app
        .slack
        .wait_for(20, "the root redrawn as low", |s| {
            s.latest_update(&ts)
                .filter(|u| message_text(u).contains("🔵 low"))
        })
        .await;
    assert!(!message_text(&redrawn).contains("🔴 critical"), "{redrawn}");
    // Audited: who, what, and the viewer's refusal.
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|a| a.actor == OPERATOR && a.command == command && a.outcome == "ok"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|a| a.actor == VIEWER && a.command == command && a.outcome == "refused"),
        "{audit:?}"
    );
    // The timeline has it too.
    let events = app
        .engine
        .store()
        .incident_events(&id)
        .await
        .expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "severity" && e.actor == OPERATOR),
        "{events:?}"
    );
    app.stop().await;
}

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    let text = format!(
        "[catalog]\ncommands_dir = \"{root}/commands\"\ncharts_dir = \"{root}/charts\"\n[roles]\noperators = [\"U0OPS\"]\n{config}"
    );
    std::fs::write(dir.path().join("bad.toml"), text).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scalebot"))
        .args(["check", "--config", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_names_a_bad_rule_or_window_by_file_and_key() {
    for (config, expected) in [
        (
            "[[severities.rules]]\nalarm = \"pay-[\"\nseverity = \"critical\"\n",
            "bad.toml: key `severities.rules[0].alarm`: `pay-[` is not a name pattern",
        ),
        (
            "[[severities.rules]]\nalarm = \"pay-*\"\nseverity = \"critical\"\nlevel = 7\n",
            "bad.toml: key `severities.rules[0].level`: 7 is not an escalation level",
        ),
        (
            "[[silences.windows]]\nname = \"w\"\nmatch = \"x\"\ndays = [\"sat\"]\nfrom = \"22:00\"\n",
            "bad.toml: key `silences.windows[0]`: window `w` needs either",
        ),
    ] {
        let (ok, out) = check(config);
        assert!(!ok, "{config}: {out}");
        assert!(out.contains(expected), "{expected} in {out}");
    }
    let (ok, out) =
        check("[[severities.rules]]\nmetric = \"Throttles\"\nseverity = \"high\"\nlevel = 2\n");
    assert!(ok, "{out}");
    assert!(
        out.contains("change an incident's severity, silence and unsilence alarms"),
        "{out}"
    );
}
