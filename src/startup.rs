//! Building the application from the config file: store, adapters,
//! engine, and the HTTP server bound to its port (port 0 in tests, which
//! read back the real one). The services get [`Settings`]; each platform
//! gets its own section of the [`SettingsFile`].

use std::future::Future;
use std::sync::Arc;

use slack_morphism::prelude::{SlackClient, SlackSigningSecret};
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use tokio::net::TcpListener;

use crate::aws::AwsCloud;
use crate::catalog::{Catalog, CatalogError};
use crate::chart::ChartCatalog;
use crate::chat::Chat;
use crate::clock::{Clock, SystemClock};
use crate::cloud::Cloud;
use crate::config::{CatalogSettings, ConfigError, Secrets, Settings};
use crate::demo::chat::WebChat;
use crate::demo::origin::SameOrigin;
use crate::demo::sim::{SimClock, SimCloud};
use crate::discord::DiscordChat;
use crate::discord::settings::{DiscordMode, DiscordSettings};
use crate::engine::{Engine, EngineParts, action_names};
use crate::metrics::Metrics;
use crate::pager::Pagers;
use crate::server::settings::ServerSettings;
use crate::server::{AppState, edge, metrics_router, router};
use crate::settings_file::SettingsFile;
use crate::slack::chat::SlackChat;
use crate::slack::socket_mode::SocketMode;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot build the Slack client: {0}")]
    SlackClient(std::io::Error),
    #[error("Slack Socket Mode did not connect: {0}")]
    SocketMode(String),
    #[error("{0}")]
    DiscordKey(#[from] crate::discord::ingress::BadKey),
    #[error(transparent)]
    DiscordClient(#[from] crate::discord::ClientError),
    #[error("SNS ingress: {0}")]
    Sns(String),
    #[error("cannot build the PagerDuty client: {0}")]
    PagerDuty(reqwest::Error),
}

/// Loads `commands/` and `charts/`, checking one against the other.
pub fn load_catalogs(dirs: &CatalogSettings) -> Result<(Catalog, ChartCatalog), CatalogError> {
    let charts = ChartCatalog::load(&dirs.charts_dir).map_err(CatalogError)?;
    let catalog = Catalog::load(&dirs.commands_dir, &action_names(), &charts.names())?;
    Ok((catalog, charts))
}

/// The web chat's channel for typed commands.
pub const DEMO_OPS_CHANNEL: &str = "ops";

/// The catalogs, with a warning for every role nobody holds.
fn checked_catalogs(settings: &Settings) -> Result<(Catalog, ChartCatalog), StartupError> {
    let (catalog, charts) = load_catalogs(&settings.catalog)?;
    for spec in catalog.iter() {
        if let Some(c) = &spec.confirm
            && !settings.roles.contains_key(&c.role)
        {
            tracing::warn!(
                command = %spec.name,
                role = %c.role,
                "no [roles] entry for this command's role: nobody can confirm it"
            );
        }
        if let Some(role) = spec
            .role
            .as_ref()
            .filter(|r| !settings.roles.contains_key(*r))
        {
            tracing::warn!(
                command = %spec.name,
                role = %role,
                "no [roles] entry for the role this command file names: nobody can run it"
            );
        }
    }
    for (key, role) in settings.permissions.named_roles() {
        if !settings.roles.contains_key(role) {
            tracing::warn!(
                key,
                role,
                "no [roles] entry for a role named in [permissions]"
            );
        }
    }
    Ok((catalog, charts))
}

pub struct Application {
    listener: TcpListener,
    /// `server.metrics_listen`'s, when it is set.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    server: ServerSettings,
    socket_mode: Option<SocketMode>,
    gateway: Option<crate::discord::gateway::LeasedGateway>,
}

impl Application {
    /// The application on AWS through the official SDK.
    pub async fn build(
        file: SettingsFile,
        secrets: impl Into<Secrets>,
    ) -> Result<Self, StartupError> {
        let metrics = Arc::new(Metrics::default());
        let cloud = AwsCloud::new(&file.aws, metrics.clone()).await;
        Self::build_with_cloud(file, secrets, Arc::new(cloud), metrics).await
    }

    /// The application on another Cloud implementation (a simulated account
    /// for drills, or a test double where the emulator stops).
    pub async fn build_with_cloud(
        file: SettingsFile,
        secrets: impl Into<Secrets>,
        cloud: Arc<dyn Cloud>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartupError> {
        Self::build_with(file, secrets, cloud, metrics, Arc::new(SystemClock)).await
    }

    /// The application with its time source given too (tests move the
    /// clock across report times and daylight-saving changes).
    pub async fn build_with(
        file: SettingsFile,
        secrets: impl Into<Secrets>,
        cloud: Arc<dyn Cloud>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let secrets: Secrets = secrets.into();
        file.require_for_serve(&secrets)?;
        let settings = file.services();
        let (catalog, charts) = checked_catalogs(&settings)?;
        let store = Store::connect(&settings.store).await?;
        let (chat, slack_client, discord_chat) = platform_chat(&file, &secrets, &metrics)?;
        let pagers = Pagers {
            sns: crate::aws::sns_publish::for_levels(&settings, &metrics).await,
            pagerduty: crate::pagerduty::events::for_levels(&settings, &secrets)
                .map_err(StartupError::PagerDuty)?,
        };
        let engine = Engine::new(EngineParts {
            settings: Arc::new(settings.clone()),
            catalog: Arc::new(catalog),
            charts: Arc::new(charts),
            cloud,
            drills: None,
            chat,
            store,
            metrics,
            clock,
            tz: settings.display.timezone,
            region: settings.aws.region.clone(),
            pagers,
        });
        engine.spawn_sweeps();
        engine.spawn_reports();
        let slack_verifier = secrets.slack.signing_secret.as_ref().map(|s| {
            Arc::new(SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
                s.expose().to_owned(),
            )))
        });
        let discord = match discord_chat {
            Some(chat) => Some(discord_ingress(chat, &file.discord, &secrets)?),
            None => None,
        };
        let sns = sns_ingress(&settings)?;
        if let Some(ingress) = &sns {
            engine.spawn_inbox(Arc::new(crate::aws::sns_intake::SnsDecoder(
                ingress.clone(),
            )));
        }
        let socket_mode = match (&secrets.slack.app_token, slack_client) {
            (Some(app_token), Some(slack_client)) => Some(
                SocketMode::start(engine.clone(), slack_client, app_token)
                    .await
                    .map_err(|e| StartupError::SocketMode(e.to_string()))?,
            ),
            _ => None,
        };
        let gateway = leased_gateway(&engine, discord.as_ref(), &file.discord, &secrets)?;
        Ok(Self {
            listener: bind(&file.server).await?,
            metrics_listener: bind_metrics(&file.server).await?,
            state: AppState {
                engine,
                slack_verifier,
                sns,
                web: None,
                demo: Arc::new(file.demo),
                same_origin: SameOrigin::Off,
                discord,
                pagerduty_secret: secrets.pagerduty.webhook_secret.clone(),
            },
            server: file.server,
            socket_mode,
            gateway,
        })
    }

    /// `scalebot demo`: the engine on a simulated account and the web
    /// chat, with simulated time; no Slack, no AWS, no secret.
    pub async fn build_demo(file: SettingsFile) -> Result<Self, StartupError> {
        let settings = file.services();
        let (catalog, charts) = checked_catalogs(&settings)?;
        let metrics = Arc::new(Metrics::default());
        let demo = &file.demo;
        let origin = demo.start.unwrap_or_else(chrono::Utc::now);
        let clock = Arc::new(SimClock::new(origin, demo.speed));
        let sim = Arc::new(SimCloud::new(
            demo.seed,
            clock.clone(),
            &settings.aws.region,
            settings.prices.provisioned_gb_second,
        ));
        let mut channels = vec![
            DEMO_OPS_CHANNEL,
            settings.channels.incidents.as_str(),
            settings.channels.reports.as_str(),
        ];
        channels.dedup();
        let web = Arc::new(WebChat::new(&channels, clock.clone()));
        let store = Store::connect(&settings.store).await?;
        let engine = Engine::new(EngineParts {
            settings: Arc::new(settings.clone()),
            catalog: Arc::new(catalog),
            charts: Arc::new(charts),
            cloud: sim.clone(),
            drills: Some(sim.clone()),
            chat: web.clone(),
            store,
            metrics,
            clock,
            tz: settings.display.timezone,
            region: settings.aws.region.clone(),
            // The demo pages nobody.
            pagers: Pagers::default(),
        });
        engine.spawn_sweeps();
        engine.spawn_inbox(Arc::new(crate::demo::alarm_feed::SimDecoder));
        crate::demo::alarm_feed::spawn(engine.clone(), sim);
        let welcome = crate::chat::Message {
            title: Some("Welcome to the scalebot demo".into()),
            text: format!(
                "Everything here runs against a *simulated* AWS account (five Lambda functions, \
                 `matbakh-db`, `matbakh-redis`) whose clock runs {}× faster than yours.\n\
                 Try `/scale throttles persona-api`, `/scale drill throttling`, `/scale rds connections`, \
                 `/scale cost 7`, or `/scale help` for every command. Alarms open incidents in <#{}>.\n\
                 Open a second tab as another user to try two-person approvals.",
                demo.speed, settings.channels.incidents
            ).into(),
            ..Default::default()
        };
        if let Err(e) = web.post(DEMO_OPS_CHANNEL, None, &welcome).await {
            tracing::warn!(error = %e, "welcome message not posted");
        }
        let listener = bind(&file.server).await?;
        let same_origin = SameOrigin::for_listen(file.server.listen);
        if same_origin != SameOrigin::Loopback {
            tracing::warn!(listen = %file.server.listen, "the demo's web chat listens beyond loopback: it has no login, and anyone who reaches it acts as any demo user");
        }
        Ok(Self {
            listener,
            metrics_listener: bind_metrics(&file.server).await?,
            state: AppState {
                engine,
                slack_verifier: None,
                sns: None,
                web: Some(web),
                demo: Arc::new(file.demo.clone()),
                same_origin,
                discord: None,
                pagerduty_secret: None,
            },
            server: file.server,
            socket_mode: None,
            gateway: None,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port of `server.metrics_listen`, when it is set.
    pub fn metrics_port(&self) -> Option<u16> {
        let listener = self.metrics_listener.as_ref()?;
        listener.local_addr().ok().map(|a| a.port())
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.state.engine.clone()
    }

    /// Serves until `shutdown` resolves (`server/edge.rs`: connection
    /// limits, header-read timeout), then lets the requests in flight and
    /// the running jobs finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let engine = self.state.engine.clone();
        // Open event streams would hold the graceful shutdown forever.
        let web = self.state.web.clone();
        let shutdown = async move {
            shutdown.await;
            if let Some(web) = web {
                web.close();
            }
        };
        // Both listeners stop on the one signal.
        let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
        let metrics = self
            .metrics_listener
            .map(|l| (l, metrics_router(engine.clone(), &self.server)));
        let app = router(self.state, &self.server);
        let public = edge::serve(self.listener, app, &self.server, shutdown.clone());
        let metrics = async {
            if let Some((listener, app)) = metrics {
                edge::serve(listener, app, &self.server, shutdown).await;
            }
        };
        tokio::join!(public, metrics);
        if let Some(sm) = &self.socket_mode {
            sm.shutdown().await;
        }
        if let Some(gw) = self.gateway {
            gw.shutdown().await;
        }
        engine.drain().await;
        Ok(())
    }
}

/// The chat of the one platform this process serves, chosen by which bot
/// token is set; with Slack's client (for Socket Mode) or Discord's adapter
/// (for its ingress and gateway).
fn platform_chat(
    file: &SettingsFile,
    secrets: &Secrets,
    metrics: &Arc<Metrics>,
) -> Result<PlatformChat, StartupError> {
    match (&secrets.slack.bot_token, &secrets.discord.bot_token) {
        (Some(token), _) => {
            let slack = SlackChat::new(&file.slack, token, metrics.clone())
                .map_err(StartupError::SlackClient)?;
            let client = slack.client();
            Ok((Arc::new(slack), Some(client), None))
        }
        (None, Some(token)) => {
            let discord = Arc::new(DiscordChat::new(&file.discord, token, metrics.clone())?);
            Ok((discord.clone(), None, Some(discord)))
        }
        (None, None) => {
            Err(ConfigError::MissingSecret("SLACK_BOT_TOKEN or DISCORD_BOT_TOKEN", "").into())
        }
    }
}

type PlatformChat = (
    Arc<dyn Chat>,
    Option<Arc<SlackClient<crate::slack::chat::Connector>>>,
    Option<Arc<DiscordChat>>,
);

/// Discord's gateway, held by the replica with the lease (gateway mode
/// only).
fn leased_gateway(
    engine: &Arc<Engine>,
    ingress: Option<&Arc<crate::discord::ingress::DiscordIngress>>,
    settings: &DiscordSettings,
    secrets: &Secrets,
) -> Result<Option<crate::discord::gateway::LeasedGateway>, StartupError> {
    let (Some(ingress), Some(token)) = (ingress, &secrets.discord.bot_token) else {
        return Ok(None);
    };
    if settings.mode != DiscordMode::Gateway {
        return Ok(None);
    }
    // Checked once here, so that a bad setting stops start-up rather than
    // every later attempt to take the lease.
    crate::discord::http(settings, token)?;
    let (settings, token) = (settings.clone(), token.clone());
    Ok(Some(crate::discord::gateway::LeasedGateway::spawn(
        engine.clone(),
        ingress.clone(),
        Box::new(move || crate::discord::http(&settings, &token).map_err(|e| e.to_string())),
    )))
}

/// `/discord/interactions`, which verifies signatures in HTTP mode only
/// (over the gateway nothing arrives there).
fn discord_ingress(
    chat: Arc<DiscordChat>,
    settings: &DiscordSettings,
    secrets: &Secrets,
) -> Result<Arc<crate::discord::ingress::DiscordIngress>, StartupError> {
    let verifier = match (settings.mode, &secrets.discord.public_key) {
        (DiscordMode::Http, Some(key)) => {
            Some(crate::discord::ingress::Verifier::from_hex(key.expose())?)
        }
        _ => None,
    };
    Ok(Arc::new(crate::discord::ingress::DiscordIngress {
        chat,
        verifier,
        guild: settings.guild_id,
    }))
}

async fn bind(server: &ServerSettings) -> Result<TcpListener, StartupError> {
    TcpListener::bind(server.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: server.listen.to_string(),
            source,
        })
}

async fn bind_metrics(server: &ServerSettings) -> Result<Option<TcpListener>, StartupError> {
    let Some(addr) = server.metrics_listen else {
        return Ok(None);
    };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// The SNS verifier from `[sns]`; the test-only trust settings are warned about.
fn sns_ingress(
    settings: &Settings,
) -> Result<Option<Arc<crate::aws::sns_intake::SnsIngress>>, StartupError> {
    let cfg = &settings.sns;
    if cfg.allowed_topics.is_empty() {
        return Ok(None);
    }
    let mut verifier = crate::sns::Verifier::new(cfg.allowed_topics.clone());
    if !cfg.extra_cert_hosts.is_empty() {
        tracing::warn!(hosts = ?cfg.extra_cert_hosts, "sns.extra_cert_hosts is set: signing certificates are also trusted from these hosts (tests only)");
        verifier = verifier.with_extra_hosts(cfg.extra_cert_hosts.clone());
    }
    if let Some(path) = &cfg.extra_ca_pem_file {
        tracing::warn!(file = %path.display(), "sns.extra_ca_pem_file is set: an extra root CA is trusted for signing certificates (tests only)");
        let pem = std::fs::read(path)
            .map_err(|e| StartupError::Sns(format!("reading {}: {e}", path.display())))?;
        verifier = verifier
            .with_extra_ca_pem(pem)
            .map_err(|e| StartupError::Sns(e.to_string()))?;
    }
    if !cfg.cert_host_addresses.is_empty() {
        tracing::warn!(hosts = ?cfg.cert_host_addresses, "sns.cert_host_addresses is set: certificate hosts are reached at these addresses instead of through DNS (tests only)");
    }
    let limits = crate::aws::sns_certs::CertLimits {
        fetches_per_minute: cfg.cert_fetches_per_minute,
        failure_ttl: cfg.cert_failure_ttl,
    };
    let ingress =
        crate::aws::sns_intake::SnsIngress::new(verifier, &cfg.cert_host_addresses, limits)
            .map_err(|e| StartupError::Sns(e.to_string()))?;
    Ok(Some(Arc::new(ingress)))
}
