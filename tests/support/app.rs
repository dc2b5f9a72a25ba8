//! `spawn_app`: the real application on port 0, with its Slack pointed at
//! the local fake, its AWS at moto (or another endpoint), and a fresh store.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use scalebot::aws::AwsCloud;
use scalebot::cloud::Cloud;
use scalebot::config::{DiscordSecrets, Secret, Secrets, SlackSecrets};
use scalebot::discord::settings::DiscordMode;
use scalebot::engine::Engine;
use scalebot::metrics::Metrics;
use scalebot::settings_file::SettingsFile;
use scalebot::startup::Application;
use sha2::Sha256;
use tokio::sync::oneshot;

use super::discord::FakeDiscord;
use super::slack::{APP_TOKEN, BOT_TOKEN, FakeSlack};

pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The incident channel of every test app.
pub const INCIDENTS: &str = "C0INCIDENTS";

/// A change to the settings a test makes before the app is built.
pub type Tweak = Box<dyn FnOnce(&mut SettingsFile) + Send>;

/// Wraps the AWS implementation (on moto) in another Cloud.
pub type WrapCloud = Box<dyn FnOnce(Arc<dyn Cloud>) -> Arc<dyn Cloud> + Send>;

pub struct Options {
    /// Replaces the Cloud for operations moto lacks.
    pub wrap_cloud: Option<WrapCloud>,
    /// Adjusts the settings before the application is built.
    pub tweak: Option<Tweak>,
    pub store_url: Option<String>,
    pub aws_endpoint: Option<String>,
    pub socket_mode: bool,
    pub http: bool,
    pub max_attempts: u32,
    /// The time source (the system clock when none).
    pub clock: Option<Arc<dyn scalebot::clock::Clock>>,
    /// Serve Discord (HTTP interactions, REST at the local fake) instead
    /// of Slack.
    pub discord: bool,
    /// With `discord`: interactions over the gateway instead of HTTP.
    pub discord_gateway: bool,
    /// With `discord`: REST to `https://discord.com` as in production,
    /// reached at the fake's HTTPS port, with serenity's rate limiter on.
    pub discord_tls: bool,
    /// PagerDuty's routing key and webhook secret.
    pub pagerduty: Option<scalebot::config::PagerDutySecrets>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            wrap_cloud: None,
            tweak: None,
            store_url: None,
            aws_endpoint: None,
            socket_mode: false,
            http: true,
            max_attempts: 3,
            clock: None,
            discord: false,
            discord_gateway: false,
            discord_tls: false,
            pagerduty: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// `server.metrics_listen`'s base URL, when a test sets it.
    pub metrics_base: Option<String>,
    pub slack: FakeSlack,
    pub http: reqwest::Client,
    pub engine: Arc<Engine>,
    pub store_url: String,
    /// The Discord fake and the application's signing key (Discord apps).
    pub discord: Option<FakeDiscord>,
    pub discord_key: Option<Arc<ring::signature::Ed25519KeyPair>>,
    shutdown: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The bot's logs only when asked for: RUST_LOG=info cargo test.
    if std::env::var_os("RUST_LOG").is_some() {
        scalebot::telemetry::init();
    }
}

pub async fn spawn_app(opts: Options) -> TestApp {
    init();
    super::moto::aws_env();
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store_url = opts
        .store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("scalebot.db").display()));
    let mut settings = SettingsFile::default();
    settings.server.listen = "127.0.0.1:0".parse().expect("addr");
    settings.slack.api_url = slack.api_url().parse().expect("a URL");
    // Pacing has its own tests; elsewhere it would only slow the suite.
    settings.slack.post_interval = Duration::ZERO;
    settings.escalation.coalesce_seconds = 1;
    settings.aws.region = super::moto::REGION.into();
    let endpoint = opts.aws_endpoint.clone().unwrap_or_else(super::moto::url);
    settings.aws.endpoint_url = Some(endpoint.parse().expect("a URL"));
    settings.aws.max_attempts = opts.max_attempts;
    settings.aws.operation_timeout_seconds = 5;
    settings.store.url = store_url.clone();
    let root = env!("CARGO_MANIFEST_DIR");
    settings.catalog.commands_dir = format!("{root}/commands").into();
    settings.catalog.charts_dir = format!("{root}/charts").into();
    settings.channels.incidents = INCIDENTS.into();
    settings.runbook.monitor_interval_seconds = 1;
    settings.runbook.monitor_max_minutes = 1;
    let (discord, discord_key) = if opts.discord {
        let fake = FakeDiscord::start().await;
        settings.discord.mode = if opts.discord_gateway {
            DiscordMode::Gateway
        } else {
            DiscordMode::Http
        };
        settings.discord.application_id =
            Some(super::discord::APPLICATION_ID.parse().expect("an id"));
        settings.discord.guild_id = Some(super::discord::GUILD_ID.parse().expect("an id"));
        if opts.discord_tls {
            let ca = dir.path().join("discord-ca.pem");
            std::fs::write(&ca, &fake.ca_pem).expect("write the CA");
            settings.discord.extra_ca_pem_file = Some(ca);
            settings
                .discord
                .host_addresses
                .insert("discord.com".into(), fake.tls_addr);
        } else {
            settings.discord.api_url = fake.api_url().parse().expect("a URL");
        }
        settings.discord.post_interval = Duration::ZERO;
        let pkcs8 =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .expect("ed25519 key");
        let key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key pair");
        (Some(fake), Some(Arc::new(key)))
    } else {
        (None, None)
    };
    if let Some(tweak) = opts.tweak {
        tweak(&mut settings);
    }
    let mut secrets = match &discord_key {
        None => Secrets::from(SlackSecrets {
            bot_token: Some(Secret::new(BOT_TOKEN)),
            signing_secret: opts.http.then(|| Secret::new(SIGNING_SECRET)),
            app_token: opts.socket_mode.then(|| Secret::new(APP_TOKEN)),
        }),
        Some(key) => {
            use ring::signature::KeyPair;
            Secrets {
                slack: SlackSecrets::default(),
                discord: DiscordSecrets {
                    bot_token: Some(Secret::new(super::discord::BOT_TOKEN)),
                    public_key: Some(Secret::new(hex::encode(key.public_key().as_ref()))),
                },
                ..Default::default()
            }
        }
    };
    if let Some(pagerduty) = opts.pagerduty {
        secrets.pagerduty = pagerduty;
    }
    let app = match (opts.wrap_cloud, opts.clock) {
        (None, None) => Application::build(settings, secrets).await,
        (wrap, clock) => {
            let metrics = Arc::new(Metrics::default());
            let aws: Arc<dyn Cloud> = Arc::new(AwsCloud::new(&settings.aws, metrics.clone()).await);
            let cloud = match wrap {
                Some(wrap) => wrap(aws),
                None => aws,
            };
            let clock = clock.unwrap_or_else(|| Arc::new(scalebot::clock::SystemClock));
            Application::build_with(settings, secrets, cloud, metrics, clock).await
        }
    }
    .expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let metrics_base = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let engine = app.engine();
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base,
        metrics_base,
        slack,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        engine,
        store_url,
        discord,
        discord_key,
        shutdown: Some(tx),
        done: Some(done),
        _dir: dir,
    }
}

pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A fresh `trigger_id`, as Slack gives every command and click its own:
/// two commands alike in all else are two requests, not a replay.
pub fn trigger_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("13345224609.{n}.8088930838d88f008e0")
}

/// A slash-command body as Slack sends it (fields from Slack's docs).
pub fn slash_body(text: &str, user: &str, channel: &str) -> String {
    let trigger = trigger_id();
    serde_urlencoded::to_string([
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", "T0001"),
        ("team_domain", "example"),
        ("enterprise_id", "E0001"),
        ("enterprise_name", "Globular Construct Inc"),
        ("channel_id", channel),
        ("channel_name", "ops"),
        ("user_id", user),
        ("user_name", "oncall"),
        ("command", "/scale"),
        ("text", text),
        ("response_url", "https://hooks.slack.com/commands/1234/5678"),
        ("trigger_id", trigger.as_str()),
        ("api_app_id", "A123456"),
    ])
    .expect("form")
}

/// A `block_actions` click as Slack sends it (fields from Slack's
/// reference), form-encoded, with a fresh `trigger_id` as every click has.
pub fn click_body(user: &str, channel: &str, action_id: &str, value: &str) -> String {
    click_body_on(user, channel, action_id, value, "1700000000.000001")
}

/// `click_body` on the message `message_ts` (whose buttons were clicked).
pub fn click_body_on(
    user: &str,
    channel: &str,
    action_id: &str,
    value: &str,
    message_ts: &str,
) -> String {
    let now = chrono::Utc::now();
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T0001"},
        "api_app_id": "A123456",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false},
        "trigger_id": trigger_id(),
        "team": {"id": "T0001", "domain": "example"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": channel, "name": "incidents"},
        "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
        "state": {"values": {}},
        "actions": [{
            "action_id": action_id,
            "block_id": "b1",
            "text": {"type": "plain_text", "text": "Confirm", "emoji": true},
            "value": value,
            "type": "button",
            "action_ts": format!("{}.{:06}", now.timestamp(), now.timestamp_subsec_micros())
        }]
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form")
}

impl TestApp {
    /// POSTs `body` to `/discord/interactions`, signed as Discord signs:
    /// Ed25519 over the timestamp followed by the body.
    pub async fn discord_signed(
        &self,
        body: &str,
        ts: i64,
        key: &ring::signature::Ed25519KeyPair,
    ) -> reqwest::Response {
        let ts = ts.to_string();
        let mut signed = ts.clone().into_bytes();
        signed.extend_from_slice(body.as_bytes());
        let signature = hex::encode(key.sign(&signed).as_ref());
        self.http
            .post(format!("{}/discord/interactions", self.base))
            .header("content-type", "application/json")
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", ts)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    /// Sends an interaction signed with the app's key; returns the answer.
    pub async fn discord_interaction(&self, interaction: &serde_json::Value) -> serde_json::Value {
        let key = self.discord_key.clone().expect("a Discord app");
        let resp = self
            .discord_signed(&interaction.to_string(), now(), &key)
            .await;
        assert_eq!(resp.status(), 200, "interaction answered");
        resp.json().await.expect("answer is JSON")
    }

    pub fn fake_discord(&self) -> &FakeDiscord {
        self.discord.as_ref().expect("a Discord app")
    }

    pub async fn post_signed(
        &self,
        path: &str,
        body: String,
        content_type: &str,
        ts: i64,
    ) -> reqwest::Response {
        let sig = sign(SIGNING_SECRET, ts, &body);
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Sends `/scale {text}` as Slack would and returns the ack JSON.
    pub async fn command(&self, text: &str, user: &str, channel: &str) -> serde_json::Value {
        let resp = self
            .post_signed(
                "/slack/commands",
                slash_body(text, user, channel),
                "application/x-www-form-urlencoded",
                now(),
            )
            .await;
        assert_eq!(resp.status(), 200, "slash command acked");
        resp.json().await.expect("ack is JSON")
    }

    /// Clicks a button as Slack reports it (`block_actions`, fields from
    /// Slack's reference), signed, and returns the HTTP status.
    pub async fn click(&self, user: &str, channel: &str, action_id: &str, value: &str) -> u16 {
        let body = click_body(user, channel, action_id, value);
        self.post_signed(
            "/slack/interactions",
            body,
            "application/x-www-form-urlencoded",
            now(),
        )
        .await
        .status()
        .as_u16()
    }

    /// The plan posted in the incident thread whose text mentions `command`:
    /// its id and the post.
    pub async fn wait_plan(&self, command: &str) -> (String, serde_json::Value) {
        let needle = format!(": /scale {command}");
        let post = self
            .slack
            .wait_for(30, &format!("a plan for {command}"), |s| {
                s.posts(INCIDENTS).into_iter().rfind(|p| {
                    p["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Plan P-") && t.contains(&needle))
                })
            })
            .await;
        let text = post["text"].as_str().unwrap_or_default();
        let id = text
            .trim_start_matches("Plan ")
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        (id, post)
    }

    /// Waits for a post in the incident channel containing `needle`.
    pub async fn wait_incident_post(&self, needle: &str) -> serde_json::Value {
        self.slack
            .wait_for(30, needle, |s| {
                s.posts(INCIDENTS)
                    .into_iter()
                    .find(|p| message_text(p).contains(needle))
            })
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    pub async fn audit(&self) -> Vec<scalebot::store::AuditEntry> {
        self.engine.store().flush().await.expect("flush");
        self.engine
            .store()
            .audit_entries(100)
            .await
            .expect("audit entries")
    }

    /// The outcome of the newest audit row for `command`, once the command
    /// has finished (its outcome is written when its job ends).
    pub async fn finished_outcome(&self, command: &str) -> String {
        for _ in 0..100 {
            let row = self
                .audit()
                .await
                .into_iter()
                .find(|a| a.command == command);
            if let Some(row) = row
                && row.finished_ms.is_some()
            {
                return row.outcome;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{command}` never finished in the audit log");
    }

    /// Stops the server and waits for background work, like SIGTERM.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// Every text of a posted message: its fallback and its blocks.
pub fn message_text(post: &serde_json::Value) -> String {
    let mut s = post["text"].as_str().unwrap_or_default().to_owned();
    s.push('\n');
    s.push_str(&post["blocks"].to_string());
    s
}

pub fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(bytes);
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    (info.width, info.height)
}
