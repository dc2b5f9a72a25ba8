//! The demo end to end in headless Chromium: pick a user, start a drill,
//! type `/scale throttles persona-api`, see the chart load, press "Raise
//! reserved concurrency", confirm as a permitted user in the incident
//! thread, and see the result and the follow-up chart with the throttles
//! gone. Leaves a screenshot in `tests/artifacts/demo.png`. And the page's
//! own errors: nobody types before picking a user, and whatever goes wrong
//! (a command that is not scalebot's, a button the bot never drew, a
//! request too long, the server gone) is said in a sentence.
//! `browser_drills.rs` clicks every button of every drill.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh`
//! installs them). Without them the test says so loudly and passes, unless
//! SCALEBOT_REQUIRE_BROWSER is set.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::demo::spawn_demo;
use crate::support::webdriver::{Driver, ENTER, Element, Session, TAB};

const WAIT: Duration = Duration::from_secs(90);

/// Chromium through chromedriver; `None` (said loudly) when they are not
/// installed, a failure when SCALEBOT_REQUIRE_BROWSER is set.
pub(crate) async fn browser_or_skip() -> Option<Driver> {
    let driver = Driver::start().await;
    if driver.is_none() {
        assert!(
            std::env::var_os("SCALEBOT_REQUIRE_BROWSER").is_none(),
            "SCALEBOT_REQUIRE_BROWSER is set but /usr/bin/chromium or /usr/bin/chromedriver is missing"
        );
        eprintln!(
            "\n!!!!!! SKIPPED: the browser test needs /usr/bin/chromium and /usr/bin/chromedriver \
             (apt-get install chromium chromium-driver; scripts/test.sh does this) !!!!!!\n"
        );
    }
    driver
}

/// Writes `bytes` to `tests/artifacts/<name>` (gitignored); its path.
pub(crate) fn save_artifact(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("artifact written");
    path
}

/// The element a script returns, waiting up to 90 s for it.
pub(crate) async fn element(s: &Session<'_>, what: &str, script: &str, args: Value) -> Element {
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

/// Finds and clicks, again if the element was redrawn in between: a root
/// message is redrawn as its incident moves (its opening steps, its
/// thread's replies), which can replace a link between a find and a click.
async fn click_fresh(s: &Session<'_>, what: &str, script: &str) {
    let started = std::time::Instant::now();
    loop {
        let e = element(s, what, script, json!([])).await;
        match s.try_click(&e).await {
            Ok(()) => return,
            Err(why) if started.elapsed() < WAIT => {
                eprintln!("{what}: clicked again ({why})");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(why) => panic!("{what} could not be clicked: {why}"),
        }
    }
}

async fn type_command(s: &Session<'_>, text: &str) {
    let input = s.find("#command").await;
    s.type_text(&input, &format!("{text}{ENTER}")).await;
}

#[tokio::test]
async fn the_throttling_runbook_end_to_end_in_chromium() {
    let Some(driver) = browser_or_skip().await else {
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
    click_fresh(
        &s,
        "the pointer to the plan",
        "const m = [...document.querySelectorAll('#messages .msg')].find((e) => e.innerText.includes('waiting for confirmation')); \
         return m ? m.querySelector('a[data-goto]') : null;",
    )
    .await;
    click_fresh(
        &s,
        "the incident's thread",
        "const m = [...document.querySelectorAll('#messages .msg')].find((e) => e.innerText.includes('Manual intervention')); \
         return m ? m.querySelector('a.replies') : null;",
    )
    .await;
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
        verdict.contains(", 0 in the") && verdict.contains("of data since"),
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
    let path = save_artifact("demo.png", &png);
    eprintln!("screenshot: {}", path.display());
    s.quit().await;
    app.stop().await;
}

/// Whether `text`, shown to someone trying the demo, reads as a sentence:
/// begins with a capital (after an emoji), ends like a sentence, and has
/// none of the words a program says to its developers.
pub(crate) fn assert_newcomer_sentence(text: &str, context: &str) {
    let words = text
        .trim_start_matches(|c: char| !c.is_alphanumeric() && c != '`')
        .trim();
    assert!(
        words.starts_with(|c: char| c.is_uppercase() || c == '`'),
        "{context}: does not begin like a sentence: {text:?}"
    );
    assert!(
        words.ends_with(['.', '?', '!', '…', ')']),
        "{context}: does not end like a sentence: {text:?}"
    );
    assert!(words.len() < 300, "{context}: too long: {text:?}");
    let status_code = regex_lite_status(words);
    assert!(
        status_code.is_none(),
        "{context}: a status code ({status_code:?}) in {text:?}"
    );
    for jargon in [
        "HTTP",
        "undefined",
        "null",
        "NaN",
        "[object",
        "serde",
        "line 1",
        "column",
        "expected",
        "missing field",
        "invalid type",
        "action_id",
        "plan.confirm",
        "plan.cancel",
        "incident.ack",
        "server.shutdown",
        "Error:",
        "error:",
        "Err(",
        "panicked",
    ] {
        assert!(!words.contains(jargon), "{context}: {jargon:?} in {text:?}");
    }
}

/// A three-digit 4xx or 5xx standing alone, as in "HTTP 422" or "(500)".
fn regex_lite_status(s: &str) -> Option<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| {
            w.len() == 3 && w.starts_with(['4', '5']) && w.chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_owned)
}

/// What `#command-error` says, once it says something containing `part`.
async fn error_shown(s: &Session<'_>, part: &str) -> String {
    let v = s
        .wait_for(
            &format!("an error saying {part:?}"),
            "const t = document.querySelector('#command-error').innerText.trim(); \
             return t.includes(arguments[0]) ? t : null;",
            json!([part]),
            Duration::from_secs(20),
        )
        .await;
    let text = v.as_str().unwrap_or_default().to_owned();
    assert_newcomer_sentence(&text, "#command-error");
    text
}

async fn command_box_closed(s: &Session<'_>) -> bool {
    s.run(
        "const c = document.querySelector('#command'); \
         return c.disabled && c.placeholder === 'Pick a demo user first';",
        json!([]),
    )
    .await
        == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_what_went_wrong_in_sentences() {
    let Some(driver) = browser_or_skip().await else {
        return;
    };
    let app = spawn_demo(1.0, "2026-11-27T02:00:00Z").await;
    let s = driver.session().await;
    s.goto(&format!("{}/", app.base)).await;
    const ALICE: &str =
        "return document.querySelector('#login.open #users button[data-user=alice]');";

    // Nobody can type before saying who they are.
    let alice = element(&s, "the user picker", ALICE, json!([])).await;
    assert!(
        command_box_closed(&s).await,
        "the command box is open before login"
    );
    s.click(&alice).await;
    s.wait_for(
        "the command box to open",
        "return !document.querySelector('#command').disabled;",
        json!([]),
        WAIT,
    )
    .await;

    // A command that is not scalebot's: the server's sentence, with its
    // `code` drawn as code.
    type_command(&s, "/deploy everything").await;
    error_shown(&s, "is not a scalebot command").await;
    let code = s
        .run(
            "return document.querySelector('#command-error code')?.innerText;",
            json!([]),
        )
        .await;
    assert_eq!(code, "/deploy everything");

    // A command scalebot does not have: the engine's explanation.
    s.run("document.querySelector('#command').value = '';", json!([]))
        .await;
    type_command(&s, "/scale frobnicate").await;
    error_shown(&s, "There is no command").await;
    s.run("document.querySelector('#command').value = '';", json!([]))
        .await;
    type_command(&s, "/scale throttles").await;
    error_shown(&s, "This command needs <function>").await;
    let code = s
        .run(
            "return document.querySelector('#command-error code')?.innerText;",
            json!([]),
        )
        .await;
    assert_eq!(
        code, "/scale throttles <function>",
        "the usage is one piece of code"
    );

    // A button the bot never drew, as a page from an older bot would send it.
    s.run(
        "click({ channel: 'ops' }, { action_id: 'server.shutdown', value: 'x' });",
        json!([]),
    )
    .await;
    error_shown(&s, "does not know this button").await;

    // More than the server takes (server.max_body_bytes): its answer is
    // not even JSON.
    s.run(
        "document.querySelector('#command').value = '/scale throttles ' + 'x'.repeat(70000); send();",
        json!([]),
    )
    .await;
    error_shown(&s, "too long").await;

    // Switching user closes the command box again.
    let switch = s.find("#switch").await;
    s.click(&switch).await;
    let alice = element(&s, "the user picker again", ALICE, json!([])).await;
    assert!(
        command_box_closed(&s).await,
        "the command box stays open after switching"
    );
    s.click(&alice).await;
    element(
        &s,
        "the welcome message",
        BY_TEXT,
        json!(["#messages", ".msg", "Welcome to the scalebot demo"]),
    )
    .await;

    // The server goes away: the page says so, and a click says nothing
    // was done.
    app.stop().await;
    error_shown(&s, "Lost the connection").await;
    s.run(
        "click({ channel: 'ops' }, { action_id: 'incident.ack', value: 'INC-1' });",
        json!([]),
    )
    .await;
    error_shown(&s, "did not answer").await;
    s.quit().await;
}
