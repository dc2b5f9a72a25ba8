//! Paging outside chat through the real server, with the clock the test
//! moves: an unacknowledged alarm climbs to L3 and L4 and each level's SNS
//! topic in moto receives a page (read back from an SQS queue subscribed
//! to it), PagerDuty (the Events API v2 stand-in in tests/support) gets a
//! trigger, then a resolve when the alarm recovers and the incident
//! resolves; an ack in chat acknowledges in PagerDuty and a signed v3
//! webhook from PagerDuty acknowledges in chat; forged webhooks change
//! nothing; a PagerDuty 500 is retried and a Publish to a missing topic is
//! retried and then recorded as failed in the thread.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use scalebot::config::{PagerDutySecrets, Secret};
use scalebot::settings_file::SettingsFile;
use scalebot::store::PageRow;

use crate::sns::{TOPIC, alarm, deliver, sns_options};
use crate::support::app::{INCIDENTS, TestApp, message_text, spawn_app};
use crate::support::clock::ManualClock;
use crate::support::moto;
use crate::support::pagerduty::{self, FakePagerDuty, ROUTING_KEY, WEBHOOK_SECRET};
use crate::support::sns::SnsSigner;

/// Seconds each level waits before moving up, in the test's clock.
const STEP: i64 = 60;

struct Paged {
    app: TestApp,
    clock: Arc<ManualClock>,
    pd: FakePagerDuty,
}

/// An app whose levels move up every `STEP` seconds, with `extra` settings.
async fn paged_app(extra: impl FnOnce(&mut SettingsFile) + Send + 'static) -> Paged {
    paged_app_on(None, extra).await
}

/// The same on the store at `store_url` (SQLite in a temporary file when none).
async fn paged_app_on(
    store_url: Option<String>,
    extra: impl FnOnce(&mut SettingsFile) + Send + 'static,
) -> Paged {
    let pd = FakePagerDuty::start().await;
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let events_url = pd.events_url();
    let mut options = sns_options(
        move |s: &mut SettingsFile| {
            for level in s.escalation.levels.iter_mut().take(3) {
                level.escalate_after_seconds = Some(STEP as u64);
            }
            s.pagerduty.events_url = events_url.parse().expect("a URL");
            s.paging.retry_after_ms = 200;
            s.paging.thread_url =
                Some("https://example.slack.com/archives/{channel}/p{message}".into());
            extra(s);
        },
        store_url,
    );
    options.clock = Some(clock.clone());
    options.pagerduty = Some(PagerDutySecrets {
        routing_key: Some(Secret::new(ROUTING_KEY)),
        webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
    });
    Paged {
        app: spawn_app(options).await,
        clock,
        pd,
    }
}

impl Paged {
    async fn fire(&self, id: &str, name: &str, state: &str) {
        let body = SnsSigner::get().notification(TOPIC, id, None, &alarm(name, state, "pg-fn"));
        assert_eq!(
            deliver(&self.app, &body, &[]).await.0,
            200,
            "accepted: {body}"
        );
    }

    /// Moves the clock on and waits for the thread to say `needle`.
    async fn advance_until(&self, secs: i64, needle: &str) -> serde_json::Value {
        let now = scalebot::clock::Clock::now(self.clock.as_ref());
        self.clock.set(now + chrono::Duration::seconds(secs));
        self.app.wait_incident_post(needle).await
    }

    async fn incident_of(&self, alarm: &str) -> scalebot::store::IncidentRow {
        let found = self
            .app
            .engine
            .store()
            .open_incidents()
            .await
            .expect("open");
        found
            .into_iter()
            .find(|i| i.title.contains(alarm))
            .unwrap_or_else(|| panic!("an open incident for {alarm}"))
    }

    async fn pages(&self, incident: &str) -> Vec<PageRow> {
        self.app
            .engine
            .store()
            .pages_of(incident)
            .await
            .expect("pages")
    }

    /// POSTs a v3 webhook body with the given signature header.
    async fn webhook(&self, body: &str, signature: Option<&str>) -> (u16, String) {
        let mut req = self
            .app
            .http
            .post(format!("{}/pagerduty/webhook", self.app.base))
            .header("content-type", "application/json");
        if let Some(sig) = signature {
            req = req.header("x-pagerduty-signature", sig);
        }
        let resp = req.body(body.to_owned()).send().await.expect("request");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    fn posts_with(&self, needle: &str) -> usize {
        self.app
            .slack
            .posts(INCIDENTS)
            .iter()
            .filter(|p| message_text(p).contains(needle))
            .count()
    }
}

/// Two SNS topics in moto and one SQS queue subscribed to both.
struct Topics {
    l3: String,
    l4: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

async fn topics() -> Topics {
    let conf = moto::sdk_config(&moto::moto_url()).await;
    let sns = aws_sdk_sns::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("pages-{tag}"))
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("a queue URL")
        .to_owned();
    let queue_arn = format!("arn:aws:sqs:{}:{}:pages-{tag}", moto::REGION, moto::ACCOUNT);
    let mut arns = Vec::new();
    for level in ["l3", "l4"] {
        let arn = sns
            .create_topic()
            .name(format!("oncall-{level}-{tag}"))
            .send()
            .await
            .expect("create topic")
            .topic_arn()
            .expect("a topic ARN")
            .to_owned();
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .send()
            .await
            .expect("subscribe the queue");
        arns.push(arn);
    }
    Topics {
        l3: arns[0].clone(),
        l4: arns[1].clone(),
        queue_url,
        sqs,
    }
}

impl Topics {
    /// Every SNS envelope the queue holds within `secs` (until `enough`).
    async fn receive(&self, secs: u64, enough: usize) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let mut got = Vec::new();
        while got.len() < enough && std::time::Instant::now() < deadline {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for m in out.messages() {
                let body = m.body().unwrap_or_default();
                got.push(serde_json::from_str(body).expect("an SNS envelope"));
            }
        }
        got
    }
}

fn from_topic<'a>(pages: &'a [serde_json::Value], topic: &str) -> Vec<&'a serde_json::Value> {
    pages.iter().filter(|p| p["TopicArn"] == topic).collect()
}

fn pd_actions(pd: &FakePagerDuty, key: &str) -> Vec<String> {
    pd.actions()
        .into_iter()
        .filter(|(_, k)| k == key)
        .map(|(a, _)| a)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_alarm_pages_l3_and_l4_and_pagerduty_follows_it() {
    let topics = topics().await;
    let (l3, l4) = (topics.l3.clone(), topics.l4.clone());
    let t = paged_app(move |s| {
        s.escalation.levels[2].sns_topics = vec![l3];
        s.escalation.levels[2].pagerduty = true;
        s.escalation.levels[3].sns_topics = vec![l4];
        s.escalation.levels[3].pagerduty = true;
    })
    .await;
    t.fire("pg-1", "pg-climb", "ALARM").await;
    t.app.wait_incident_post("ALARM: pg-climb").await;
    let incident = t.incident_of("pg-climb").await;
    let key = format!("scalebot-{}", incident.id);
    t.advance_until(STEP + 1, "Escalated to L2").await;
    // L2 pages nobody outside chat.
    assert!(t.pages(&incident.id).await.is_empty());
    assert!(t.pd.events().is_empty());

    t.advance_until(STEP + 1, "Escalated to L3").await;
    t.app.wait_incident_post("📟 Paged L3 SNS topic").await;
    t.app.wait_incident_post("📟 Paged L3 PagerDuty").await;
    let trigger = &t.pd.events()[0];
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], key.as_str());
    assert_eq!(trigger["payload"]["severity"], "error");
    let summary = trigger["payload"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&incident.id) && summary.contains("L3 engineering team"),
        "{summary}"
    );
    let link = trigger["links"][0]["href"].as_str().unwrap_or_default();
    assert!(
        link.starts_with(&format!("https://example.slack.com/archives/{INCIDENTS}/p")),
        "{link}"
    );

    let got = topics.receive(20, 1).await;
    let at_l3 = from_topic(&got, &topics.l3);
    assert_eq!(at_l3.len(), 1, "one page on the L3 topic: {got:?}");
    let subject = at_l3[0]["Subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with(&format!("{} L3:", incident.id)) && subject.len() < 100,
        "{subject}"
    );
    let text = at_l3[0]["Message"].as_str().unwrap_or_default();
    for needle in [
        format!("Incident {} has reached L3 engineering team", incident.id),
        "Alarm: pg-climb".into(),
        format!("Thread: https://example.slack.com/archives/{INCIDENTS}/p"),
        format!("/scale incident {} ack", incident.id),
    ] {
        assert!(text.contains(&needle), "{needle} in {text}");
    }

    t.advance_until(STEP + 1, "Escalated to L4").await;
    t.app.wait_incident_post("📟 Paged L4 SNS topic").await;
    let got = topics.receive(20, 1).await;
    assert_eq!(
        from_topic(&got, &topics.l4).len(),
        1,
        "one page on the L4 topic: {got:?}"
    );
    assert!(
        from_topic(&got, &topics.l3).is_empty(),
        "L3 is not paged again: {got:?}"
    );
    t.pd.wait_for(10, "the L4 trigger", |pd| {
        (pd_actions(pd, &key).len() == 2).then_some(())
    })
    .await;
    assert_eq!(t.pd.events()[1]["payload"]["severity"], "critical");

    // The alarm recovers; the quiet period passes; the incident resolves.
    t.fire("pg-2", "pg-climb", "OK").await;
    t.app.wait_incident_post("is OK again").await;
    t.advance_until(901, "Resolved automatically").await;
    t.pd.wait_for(10, "a resolve", |pd| {
        (pd.state_of(&key).as_deref() == Some("resolved")).then_some(())
    })
    .await;
    assert_eq!(pd_actions(&t.pd, &key), ["trigger", "trigger", "resolve"]);
    t.app
        .wait_incident_post("📟 Paged PagerDuty (resolve)")
        .await;
    let rows = t.pages(&incident.id).await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.outcome.as_deref() == Some("sent")),
        "{rows:?}"
    );
    // Nothing more arrives on either topic.
    assert!(topics.receive(2, 1).await.is_empty());
    t.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_and_chat_acknowledge_each_other() {
    let t = paged_app(|s| s.escalation.levels[1].pagerduty = true).await;
    t.fire("pg-ack-1", "pg-chat-ack", "ALARM").await;
    t.fire("pg-ack-2", "pg-pd-ack", "ALARM").await;
    t.app.wait_incident_post("ALARM: pg-chat-ack").await;
    t.app.wait_incident_post("ALARM: pg-pd-ack").await;
    let in_chat = t.incident_of("pg-chat-ack").await;
    let in_pd = t.incident_of("pg-pd-ack").await;
    t.advance_until(STEP + 1, "Escalated to L2").await;
    let (chat_key, pd_key) = (
        format!("scalebot-{}", in_chat.id),
        format!("scalebot-{}", in_pd.id),
    );
    t.pd.wait_for(10, "two triggers", |pd| {
        (pd.actions().len() == 2).then_some(())
    })
    .await;

    // Acknowledged in chat → acknowledged in PagerDuty.
    assert_eq!(
        t.app
            .click("U0OPS", INCIDENTS, "incident.ack", &in_chat.id)
            .await,
        200
    );
    t.pd.wait_for(10, "an acknowledge", |pd| {
        (pd.state_of(&chat_key).as_deref() == Some("acknowledged")).then_some(())
    })
    .await;
    t.app
        .wait_incident_post("📟 Paged PagerDuty (acknowledge)")
        .await;

    // Forged, unsigned and malformed webhooks change nothing.
    let ack = pagerduty::webhook_body("incident.acknowledged", &pd_key, "Ada Lovelace");
    let forged = pagerduty::signature("not-the-secret", &ack);
    assert_eq!(t.webhook(&ack, Some(&forged)).await.0, 401);
    assert_eq!(t.webhook(&ack, None).await.0, 401);
    let tampered = ack.replace("Ada Lovelace", "Mallory");
    let signed_for_ack = pagerduty::signature(WEBHOOK_SECRET, &ack);
    assert_eq!(t.webhook(&tampered, Some(&signed_for_ack)).await.0, 401);
    let junk = "{\"event\": ";
    assert_eq!(
        t.webhook(junk, Some(&pagerduty::signature(WEBHOOK_SECRET, junk)))
            .await
            .0,
        400
    );
    let unknown = pagerduty::webhook_body("incident.acknowledged", "scalebot-INC-NOSUCH", "Ada");
    let (status, text) = t
        .webhook(
            &unknown,
            Some(&pagerduty::signature(WEBHOOK_SECRET, &unknown)),
        )
        .await;
    assert_eq!(
        (status, text.as_str()),
        (200, "ignored: no incident INC-NOSUCH\n")
    );
    let still = t
        .app
        .engine
        .store()
        .incident(&in_pd.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(still.state.as_str(), "open", "nothing acknowledged it");
    assert_eq!(t.posts_with("Acknowledged in PagerDuty"), 0);

    // Signed by PagerDuty (the current secret among two, as in a rotation).
    let both = format!(
        "{},{signed_for_ack}",
        pagerduty::signature("old-secret", &ack)
    );
    assert_eq!(t.webhook(&ack, Some(&both)).await.0, 200);
    let post = t
        .app
        .wait_incident_post("Acknowledged in PagerDuty by Ada Lovelace")
        .await;
    assert!(post["thread_ts"].is_string(), "in the thread: {post}");
    let acked = t
        .app
        .engine
        .store()
        .incident(&in_pd.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(acked.state.as_str(), "acknowledged");
    let audit = t.app.audit().await;
    assert!(
        audit.iter().any(|a| a.actor == "PagerDuty: Ada Lovelace"
            && a.platform == "pagerduty"
            && a.command == format!("incident {} ack", in_pd.id)
            && a.outcome == "ok"),
        "{audit:?}"
    );
    // A second delivery of the same event changes nothing more.
    assert_eq!(t.webhook(&ack, Some(&signed_for_ack)).await.0, 200);
    // PagerDuty is not told back what it told us.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(pd_actions(&t.pd, &pd_key), ["trigger"]);
    assert_eq!(t.posts_with("Acknowledged in PagerDuty by Ada Lovelace"), 1);

    let resolved = pagerduty::webhook_body("incident.resolved", &pd_key, "Ada Lovelace");
    let sig = pagerduty::signature(WEBHOOK_SECRET, &resolved);
    assert_eq!(t.webhook(&resolved, Some(&sig)).await.0, 200);
    t.app
        .wait_incident_post("Resolved in PagerDuty by Ada Lovelace")
        .await;
    t.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pagerduty_500_is_retried_and_the_page_arrives_once() {
    let t = paged_app(|s| s.escalation.levels[1].pagerduty = true).await;
    t.pd.fail_next(1);
    t.fire("pg-500-1", "pg-retry", "ALARM").await;
    t.app.wait_incident_post("ALARM: pg-retry").await;
    let incident = t.incident_of("pg-retry").await;
    t.advance_until(STEP + 1, "Escalated to L2").await;
    t.app.wait_incident_post("📟 Paged L2 PagerDuty").await;
    let refused = t.pd.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, 500);
    assert_eq!(refused[0].1["event_action"], "trigger");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let key = format!("scalebot-{}", incident.id);
    assert_eq!(pd_actions(&t.pd, &key), ["trigger"], "delivered once");
    let rows = t.pages(&incident.id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].attempts, rows[0].outcome.as_deref()),
        (2, Some("sent"))
    );
    assert_eq!(t.posts_with("📟 Paged L2 PagerDuty"), 1);
    t.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_a_missing_topic_is_retried_then_failed_on_the_timeline() {
    let missing = format!(
        "arn:aws:sns:{}:{}:no-such-topic-{}",
        moto::REGION,
        moto::ACCOUNT,
        uuid::Uuid::new_v4().simple()
    );
    let topic = missing.clone();
    let t = paged_app(move |s| {
        s.escalation.levels[1].sns_topics = vec![topic];
        s.paging.max_attempts = 3;
    })
    .await;
    t.fire("pg-missing-1", "pg-missing", "ALARM").await;
    t.app.wait_incident_post("ALARM: pg-missing").await;
    let incident = t.incident_of("pg-missing").await;
    t.advance_until(STEP + 1, "Escalated to L2").await;
    let failed = t.app.wait_incident_post("❌ Page to L2 SNS topic").await;
    let text = message_text(&failed);
    assert!(
        text.contains(&missing) && text.contains("after 3 attempt(s)"),
        "{text}"
    );
    let rows = t.pages(&incident.id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].attempts, rows[0].outcome.as_deref()),
        (3, Some("failed"))
    );
    let events = t
        .app
        .engine
        .store()
        .incident_events(&incident.id)
        .await
        .expect("events");
    assert!(
        events.iter().any(|e| e.kind == "page_failed"),
        "on the timeline: {events:?}"
    );
    t.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_retries_and_pagerduty_follow_ups_on_postgres() {
    let url = crate::store::postgres_url().await;
    let missing = format!(
        "arn:aws:sns:{}:{}:no-such-topic-pg",
        moto::REGION,
        moto::ACCOUNT
    );
    let t = paged_app_on(Some(url), move |s| {
        s.escalation.levels[1].sns_topics = vec![missing];
        s.escalation.levels[1].pagerduty = true;
        s.paging.max_attempts = 2;
    })
    .await;
    t.pd.fail_next(1);
    t.fire("pg-pg-1", "pg-postgres", "ALARM").await;
    t.app.wait_incident_post("ALARM: pg-postgres").await;
    let incident = t.incident_of("pg-postgres").await;
    let key = format!("scalebot-{}", incident.id);
    t.advance_until(STEP + 1, "Escalated to L2").await;
    t.app.wait_incident_post("❌ Page to L2 SNS topic").await;
    t.app.wait_incident_post("📟 Paged L2 PagerDuty").await;
    assert_eq!(
        t.app
            .click("U0OPS", INCIDENTS, "incident.ack", &incident.id)
            .await,
        200
    );
    t.app
        .wait_incident_post("📟 Paged PagerDuty (acknowledge)")
        .await;
    assert_eq!(pd_actions(&t.pd, &key), ["trigger", "acknowledge"]);
    let rows = t.pages(&incident.id).await;
    let outcomes: Vec<(i64, Option<&str>)> = rows
        .iter()
        .map(|r| (r.attempts, r.outcome.as_deref()))
        .collect();
    assert_eq!(outcomes.len(), 3, "{rows:?}");
    for expected in [(2, Some("failed")), (2, Some("sent")), (1, Some("sent"))] {
        assert!(outcomes.contains(&expected), "{expected:?} in {rows:?}");
    }
    t.app.stop().await;
}
