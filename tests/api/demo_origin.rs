//! Only the demo's own page drives its web chat (through the real demo
//! server): a form post from another web page, a JSON body under another
//! content type, another `Origin` and a foreign `Host` (DNS rebinding) are
//! refused and change nothing; and `scalebot demo` will not listen beyond
//! loopback without `--listen-public`, and shouts when it does.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::demo::{DemoApp, spawn_demo};

const NIGHT: &str = "2026-11-27T02:00:00Z";

/// POSTs `body` to the command route with the given headers.
async fn post(app: &DemoApp, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/web/api/command", app.base))
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_the_demos_own_page_may_use_the_web_chat() {
    let app = spawn_demo(1.0, NIGHT).await;
    let own = app.base.clone();
    let host = own.trim_start_matches("http://").to_owned();
    let before = app.messages("alice").await.len();
    let command = json!({"user": "alice", "channel": "ops", "text": "/scale help"}).to_string();
    let json_type = ("content-type", "application/json");

    // What a form on another web page sends: refused on its origin.
    let form = "user=alice&channel=ops&text=%2Fscale+help";
    let (status, body) = post(
        &app,
        form,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "http://evil.example"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("own page"),
        "{body}"
    );
    // A form can also post text/plain whose body is JSON: same origin
    // check first, and without an Origin, the content type.
    let (status, _) = post(
        &app,
        &command,
        &[
            ("content-type", "text/plain"),
            ("origin", "http://evil.example"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = post(&app, &command, &[("content-type", "text/plain")]).await;
    assert_eq!(status, 415, "{body}");
    let (status, _) = post(&app, &command, &[]).await;
    assert_eq!(status, 415, "no content type at all");
    for origin in ["null", "http://127.0.0.1:1", "https://evil.example"] {
        let (status, _) = post(&app, &command, &[json_type, ("origin", origin)]).await;
        assert_eq!(status, 403, "Origin {origin}");
    }
    // DNS rebinding: a page on evil.example, resolved to 127.0.0.1, is
    // its own origin, but not a loopback host.
    let rebound = format!(
        "evil.example:{}",
        host.rsplit(':').next().unwrap_or_default()
    );
    let rebound_origin = format!("http://{rebound}");
    let (status, _) = post(
        &app,
        &command,
        &[json_type, ("host", &rebound), ("origin", &rebound_origin)],
    )
    .await;
    assert_eq!(status, 403, "a foreign Host");
    let resp = app
        .http
        .get(format!("{}/web/api/state?user=alice", app.base))
        .header("host", &rebound)
        .send()
        .await
        .expect("state");
    assert_eq!(
        resp.status().as_u16(),
        403,
        "reading the state under a foreign Host"
    );

    assert_eq!(app.messages("alice").await.len(), before, "nothing changed");

    // The page itself: its own origin, JSON, as index.html sends it.
    let (status, body) = post(&app, &command, &[json_type, ("origin", &own)]).await;
    assert_eq!(status, 200, "{body}");
    let localhost = format!(
        "http://localhost:{}",
        host.rsplit(':').next().unwrap_or_default()
    );
    let (status, body) = post(
        &app,
        &command,
        &[
            json_type,
            ("host", localhost.trim_start_matches("http://")),
            ("origin", &localhost),
        ],
    )
    .await;
    assert_eq!(status, 200, "at http://localhost too: {body}");
    let page = app
        .http
        .get(&own)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("page text");
    assert!(
        page.contains(r#"headers: { "content-type": "application/json" }"#),
        "the page posts JSON with its content type"
    );

    // Refusals are counted like the web chat's other refusals.
    let metrics = app
        .http
        .get(format!("{own}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let series = r#"scalebot_requests_total{route="/web/api/command",outcome="refused"} 8"#;
    assert!(metrics.contains(series), "{series} in:\n{metrics}");
    app.stop().await;
}

fn demo_command(listen: &str, extra: &[&str], dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalebot"));
    cmd.args(["demo", "--config", "config/demo.toml", "--listen", listen])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn the_demo_listens_beyond_loopback_only_when_told_and_then_warns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = demo_command("0.0.0.0:0", &[], dir.path())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused without the flag: {stderr}");
    assert!(stderr.contains("--listen-public"), "says how: {stderr}");
    assert!(stderr.contains("no login"), "says why: {stderr}");

    let mut child = demo_command("0.0.0.0:0", &["--listen-public"], dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let started = Instant::now();
    let mut serving = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap_or_default();
        if line.contains("scalebot demo: open http://0.0.0.0:") {
            serving = true;
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("stops");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(serving, "serves with the flag: {stderr}");
    assert!(
        stderr.contains("WARNING: the demo listens on 0.0.0.0"),
        "{stderr}"
    );
    assert!(stderr.contains("NO LOGIN"), "{stderr}");

    // On loopback no flag is needed and nothing is shouted.
    let mut child = demo_command("127.0.0.1:0", &[], dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let serving = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("scalebot demo: open http://127.0.0.1:"));
    let _ = child.kill();
    let out = child.wait_with_output().expect("stops");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(serving, "serves on loopback: {stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
}
