//! The demo end to end in headless Chromium: pick a user, start a drill,
//! type `/scale throttles persona-api`, see the chart load, press "Raise
//! reserved concurrency", confirm as a permitted user in the incident
//! thread, and see the result and the follow-up chart with the throttles
//! gone. Leaves a screenshot in `tests/artifacts/demo.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh`
//! installs them). Without them the test says so loudly and passes, unless
//! SCALEBOT_REQUIRE_BROWSER is set.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::demo::spawn_demo;
use crate::support::webdriver::{Driver, ENTER, Element, Session, TAB};

const WAIT: Duration = Duration::from_secs(90);

async fn element(s: &Session<'_>, what: &str, script: &str, args: Value) -> Element {
    let v = s.wait_for(what, script, args, WAIT).await;
    match v
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
    {
        Some(id) => Element::from_id(id),
        None => panic!("{what}: the script returned {v}, not an element"),
    }
}

/// The first `selector` inside `scope` whose text contains `text`.
const BY_TEXT: &str = "const [scope, selector, text] = arguments; \
    return [...document.querySelectorAll(scope + ' ' + selector)] \
      .find((e) => e.innerText.includes(text)) || null;";

/// The natural width of the last loaded chart in `scope`, once it is > 0.
const CHART_WIDTH: &str = "const imgs = [...document.querySelectorAll(arguments[0] + ' img.chart')]; \
    const img = imgs[imgs.length - 1]; \
    return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : null;";

async fn type_command(s: &Session<'_>, text: &str) {
    let input = s.find("#command").await;
    s.type_text(&input, &format!("{text}{ENTER}")).await;
}

#[tokio::test]
async fn the_throttling_runbook_end_to_end_in_chromium() {
    let Some(driver) = Driver::start().await else {
        assert!(
            std::env::var_os("SCALEBOT_REQUIRE_BROWSER").is_none(),
            "SCALEBOT_REQUIRE_BROWSER is set but /usr/bin/chromium or /usr/bin/chromedriver is missing"
        );
        eprintln!(
            "\n!!!!!! SKIPPED: the browser test needs /usr/bin/chromium and /usr/bin/chromedriver \
             (apt-get install chromium chromium-driver; scripts/test.sh does this) !!!!!!\n"
        );
        return;
    };
    let app = spawn_demo(20.0, "2026-11-27T02:00:00Z").await;
    let s = driver.session().await;
    s.goto(&format!("{}/", app.base)).await;

    // Pick a user: alice is an operator in config/demo.toml.
    let alice = element(
        &s,
        "the user picker",
        "return document.querySelector('#users button[data-user=alice]');",
        json!([]),
    )
    .await;
    s.click(&alice).await;
    element(
        &s,
        "the welcome message",
        BY_TEXT,
        json!(["#messages", ".msg", "Welcome to the scalebot demo"]),
    )
    .await;

    // A quiet night has no throttles: start the drill and wait for its alarm.
    type_command(&s, "/scale drill throttling").await;
    element(
        &s,
        "the drill",
        BY_TEXT,
        json!(["#messages", ".msg", "Drill started: throttling"]),
    )
    .await;
    s.wait_for(
        "the throttling alarm",
        "return [...S.messages.values()].some((m) => m.body && (m.body.title || '').includes('ALARM: persona-api-throttles'));",
        json!([]),
        WAIT,
    )
    .await;

    // Step 1: the throttles, with the chart; Tab completes the command's
    // name from the catalog.
    let input = s.find("#command").await;
    s.type_text(&input, "/scale thro").await;
    s.wait_for(
        "the completion list",
        "return document.querySelector('#suggestions').innerText.includes('/scale throttles <function>');",
        json!([]),
        WAIT,
    )
    .await;
    s.type_text(&input, TAB).await;
    let completed = s
        .run(
            "return document.querySelector('#command').value;",
            json!([]),
        )
        .await;
    assert_eq!(completed, "/scale throttles ");
    s.type_text(&input, &format!("persona-api{ENTER}")).await;
    let reply = element(
        &s,
        "the throttles reply",
        BY_TEXT,
        json!(["#messages", ".msg", "Throttles: persona-api"]),
    )
    .await;
    let width = s
        .wait_for(
            "the throttles chart",
            CHART_WIDTH,
            json!(["#messages"]),
            WAIT,
        )
        .await;
    assert!(width.as_u64().unwrap_or(0) > 0, "chart width {width}");
    let text = s
        .run("return arguments[0].innerText;", json!([reply.to_json()]))
        .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("throttles in the last 10 minutes") && !text.contains("No throttles"),
        "the reply shows throttles: {text}"
    );

    // Step 2: raise reserved concurrency; the plan waits in an incident thread.
    let raise = element(
        &s,
        "the raise button",
        BY_TEXT,
        json!(["#messages", "button.action", "Raise reserved concurrency"]),
    )
    .await;
    s.click(&raise).await;
    let link = element(
        &s,
        "the pointer to the plan",
        "const m = [...document.querySelectorAll('#messages .msg')].find((e) => e.innerText.includes('waiting for confirmation')); \
         return m ? m.querySelector('a[data-goto]') : null;",
        json!([]),
    )
    .await;
    s.click(&link).await;
    let replies = element(
        &s,
        "the incident's thread",
        "const m = [...document.querySelectorAll('#messages .msg')].find((e) => e.innerText.includes('Manual intervention')); \
         return m ? m.querySelector('a.replies') : null;",
        json!([]),
    )
    .await;
    s.click(&replies).await;
    let confirm = element(
        &s,
        "the Confirm button",
        BY_TEXT,
        json!(["#thread-messages", "button.action", "Confirm"]),
    )
    .await;
    s.click(&confirm).await;
    let run_it = element(
        &s,
        "the confirm dialog",
        "return document.querySelector('#modal.open #modal-confirm');",
        json!([]),
    )
    .await;
    s.click(&run_it).await;

    // The result, then the monitor's verdict and its chart, in the thread.
    element(
        &s,
        "the change's result",
        BY_TEXT,
        json!(["#thread-messages", ".msg", "Executed"]),
    )
    .await;
    let settled = element(
        &s,
        "the monitor's verdict",
        BY_TEXT,
        json!(["#thread-messages", ".msg", "settled"]),
    )
    .await;
    let verdict = s
        .run("return arguments[0].innerText;", json!([settled.to_json()]))
        .await;
    let verdict = verdict.as_str().unwrap_or_default().to_owned();
    assert!(
        verdict.contains(", 0 since"),
        "throttles fell to zero: {verdict}"
    );
    assert!(
        !verdict.contains("settled: 0 throttles"),
        "there were throttles before: {verdict}"
    );
    let width = s
        .wait_for(
            "the follow-up chart",
            CHART_WIDTH,
            json!(["#thread-messages"]),
            WAIT,
        )
        .await;
    assert!(
        width.as_u64().unwrap_or(0) > 0,
        "follow-up chart width {width}"
    );

    s.run(
        "const t = document.querySelector('#thread-messages'); t.scrollTop = t.scrollHeight;",
        json!([]),
    )
    .await;
    let png = s.screenshot().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let path = dir.join("demo.png");
    std::fs::write(&path, &png).expect("screenshot written");
    eprintln!("screenshot: {}", path.display());
    s.quit().await;
    app.stop().await;
}
