//! The platform-neutral engine: a parsed command becomes an immediate ack
//! and, for real work, a background job that reads AWS, renders charts and
//! posts the outcome through the Chat port.

mod actions;
mod alarms;
mod confirm;
mod escalation;
mod help;
pub(crate) mod incident;
mod monitor;
pub mod plan;
mod reporting;
mod root;
pub mod snapshot;

pub use confirm::ButtonEvent;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::{Catalog, Invocation, Parsed};
use crate::chart::{ChartCatalog, ChartError};
use crate::chat::{Chat, Image, Message, Tone};
pub use crate::clock::{Clock, SystemClock};
use crate::cloud::{Cloud, CloudError};
use crate::config::Settings;
use crate::drills::Drills;
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::store::{AuditEntry, AuditId, Store};

pub use actions::ACTIONS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Slack,
    Discord,
    Web,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
            Platform::Web => "web",
        }
    }
}

/// A slash command as it arrived, verified.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub platform: Platform,
    pub user: String,
    pub channel: String,
    pub text: String,
    /// Set when the command comes from an incident's button or thread, so
    /// that its plan joins that incident.
    pub incident: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Only the person who typed the command sees it.
    Ephemeral,
    InChannel,
}

/// What the ingress answers within the platform's ack window.
#[derive(Debug, Clone)]
pub struct Ack {
    pub visibility: Visibility,
    pub message: Message,
    /// A background job will post the outcome in the channel (Discord then
    /// lets that post replace this answer).
    pub job: bool,
}

/// What a read-only action produces.
#[derive(Debug, Clone)]
pub struct Reply {
    pub message: Message,
    pub images: Vec<Image>,
}

/// What a changing action proposes; it runs only once confirmed.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub changes: Vec<plan::Change>,
    /// Consequences worth reading before confirming (account concurrency
    /// left, cost per hour, functions affected).
    pub notes: Vec<String>,
    /// The executed plan this one reverts.
    pub undo_of: Option<String>,
    /// The incident the plan belongs to, when the action knows it.
    pub incident: Option<String>,
}

impl Proposal {
    pub fn new(changes: Vec<plan::Change>, notes: Vec<String>) -> Self {
        Self {
            changes,
            notes,
            undo_of: None,
            incident: None,
        }
    }
}

pub enum Outcome {
    Reply(Reply),
    Proposal(Proposal),
    /// The action posted its answer itself (a report with charts in its
    /// thread).
    Posted,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
    #[error("the command file is missing what the action needs: {0}")]
    Spec(String),
    /// A guardrail or a runbook rule says no; the text names the limit.
    #[error("refused: {0}")]
    Refused(String),
}

pub struct Engine {
    settings: Arc<Settings>,
    catalog: Arc<Catalog>,
    charts: Arc<ChartCatalog>,
    cloud: Arc<dyn Cloud>,
    /// Only the demo's simulated account has drills.
    drills: Option<Arc<dyn Drills>>,
    chat: Arc<dyn Chat>,
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    tz: Tz,
    region: String,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// One alarm's notifications are handled one at a time, in order.
    alarm_locks: dashmap::DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Incidents whose root message is due for a (coalesced) redraw.
    redraws: dashmap::DashMap<String, ()>,
    /// Repeated alarm notifications per incident, waiting to be posted as one.
    repeats: dashmap::DashMap<String, alarms::Repeats>,
    /// (incident, alarm) → the state last stored in `incident_alarms`.
    alarm_states: dashmap::DashMap<(String, String), String>,
    /// The engine itself, for work it schedules from `&self`.
    me: std::sync::Weak<Engine>,
}

pub struct EngineParts {
    pub settings: Arc<Settings>,
    pub catalog: Arc<Catalog>,
    pub charts: Arc<ChartCatalog>,
    pub cloud: Arc<dyn Cloud>,
    pub drills: Option<Arc<dyn Drills>>,
    pub chat: Arc<dyn Chat>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub tz: Tz,
    pub region: String,
}

impl Engine {
    pub fn new(p: EngineParts) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            settings: p.settings,
            catalog: p.catalog,
            charts: p.charts,
            cloud: p.cloud,
            drills: p.drills,
            chat: p.chat,
            store: p.store,
            metrics: p.metrics,
            clock: p.clock,
            tz: p.tz,
            region: p.region,
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            alarm_locks: dashmap::DashMap::new(),
            redraws: dashmap::DashMap::new(),
            repeats: dashmap::DashMap::new(),
            alarm_states: dashmap::DashMap::new(),
            me: me.clone(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn chat(&self) -> &Arc<dyn Chat> {
        &self.chat
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn cloud(&self) -> &Arc<dyn Cloud> {
        &self.cloud
    }

    /// Cancelled when the engine starts draining: long-running loops
    /// outside the engine (the demo's alarm evaluator) stop on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs `work` as a tracked background job (awaited at shutdown).
    pub fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(work);
    }

    /// Waits for background jobs to finish (graceful shutdown).
    pub async fn drain(&self) {
        // Monitors and the expiry sweep stop; commands in flight finish.
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "audit flush at shutdown failed");
        }
    }

    /// Answers at once; real work continues in the background and reports
    /// into the channel. Nothing reaches AWS for input that does not parse.
    pub async fn accept(self: &Arc<Self>, req: CommandRequest) -> Ack {
        let id = AuditId::new();
        let parsed = self.catalog.parse(&req.text);
        let (command, outcome, detail, ack) = match parsed {
            Parsed::Help(topic) => (
                "help".to_owned(),
                "answered",
                String::new(),
                Ack {
                    job: false,
                    visibility: Visibility::Ephemeral,
                    message: match topic {
                        Some(spec) => help::command(&spec),
                        None => help::catalog(&self.catalog),
                    },
                },
            ),
            Parsed::Error(e) => (
                crate::domain::truncate(req.text.trim(), 200),
                "rejected",
                e.to_string(),
                Ack {
                    job: false,
                    visibility: Visibility::Ephemeral,
                    message: Message {
                        tone: Tone::Warning,
                        text: format!("{} {e}", Tone::Warning.emoji()),
                        footer: Some("`/scale help` lists every command.".into()),
                        ..Default::default()
                    },
                },
            ),
            Parsed::Run(inv) => {
                let command = inv.canonical();
                let ack = Ack {
                    job: true,
                    visibility: Visibility::Ephemeral,
                    message: Message::text(format!("⏳ Running `/scale {command}`…")),
                };
                let engine = self.clone();
                let (req2, id2) = (req.clone(), id.clone());
                self.tasks
                    .spawn(async move { engine.run(inv, req2, id2).await });
                (command, "accepted", String::new(), ack)
            }
        };
        let entry = AuditEntry {
            id: id.0,
            at_ms: self.clock.now().timestamp_millis(),
            platform: req.platform.as_str().into(),
            actor: req.user.clone(),
            channel: req.channel.clone(),
            command,
            outcome: outcome.into(),
            detail,
            finished_ms: None,
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, "audit write failed");
        }
        ack
    }

    async fn run(self: Arc<Self>, inv: Invocation, req: CommandRequest, id: AuditId) {
        let span = tracing::info_span!("command", command = %inv.canonical(), user = %req.user);
        let _enter = span.enter();
        let result = actions::run(&self, &inv, &req).await;
        let (outcome, detail) = match result {
            Ok(Outcome::Reply(mut reply)) => {
                reply.message.answers = Some(req.user.clone());
                match self.deliver(&req.channel, reply).await {
                    Ok(()) => ("ok", String::new()),
                    Err(e) => ("chat_failed", e.to_string()),
                }
            }
            Ok(Outcome::Posted) => ("ok", String::new()),
            Ok(Outcome::Proposal(proposal)) => match self.propose(&req, &inv, proposal, None).await
            {
                Ok(plan_id) => ("planned", plan_id),
                Err(e) => self.report_failure(&req, &inv, e).await,
            },
            Err(e) => self.report_failure(&req, &inv, e).await,
        };
        if let Err(e) = self.store.audit_finish(&id, outcome, &detail).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }

    async fn report_failure(
        &self,
        req: &CommandRequest,
        inv: &Invocation,
        e: ActionError,
    ) -> (&'static str, String) {
        tracing::info!(error = %e, "command failed");
        let (tone, outcome) = match e {
            ActionError::Refused(_) => (Tone::Warning, "refused"),
            _ => (Tone::Bad, "failed"),
        };
        let message = Message {
            title: Some(format!("Could not run /scale {}", inv.canonical())),
            tone,
            text: capitalise(&e.to_string()),
            answers: Some(req.user.clone()),
            ..Default::default()
        };
        match self.chat.post(&req.channel, None, &message).await {
            Ok(_) => (outcome, e.to_string()),
            Err(chat) => (
                outcome,
                format!("{e}; and the error could not be posted: {chat}"),
            ),
        }
    }

    async fn deliver(&self, channel: &str, reply: Reply) -> Result<(), crate::chat::ChatError> {
        self.chat.post(channel, None, &reply.message).await?;
        for image in &reply.images {
            self.chat.upload_png(channel, None, image).await?;
        }
        Ok(())
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
