//! The services: commands (parse, ack, run an action), plans (propose,
//! confirm, execute, expire, undo), incidents (alarm intake, top message,
//! escalation, the watch after a change) and, in `crate::reports`, the
//! scheduled reports. [`Engine`] only builds them and is what the
//! platforms hand verified input to; each service owns what it needs.

pub(crate) mod commands;
pub(crate) mod incidents;
pub mod plans;
mod request;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::commands::CommandService;
pub use self::commands::actions::Action;
pub use self::incidents::Inbound;
use self::incidents::{IncidentParts, IncidentService};
use self::plans::{PlanParts, PlanService};
pub use self::request::{
    Ack, ActionError, ButtonEvent, CommandRequest, Outcome, Proposal, Reply, Visibility,
};
use crate::alarm::Alarm;
use crate::catalog::Catalog;
use crate::chart::ChartCatalog;
use crate::chat::Chat;
pub use crate::clock::{Clock, SystemClock};
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::drills::Drills;
use crate::metrics::Metrics;
use crate::reports::{ReportKind, ReportParts, ReportService};
use crate::store::Store;

/// The action names command files may use in `action`.
pub fn action_names() -> Vec<&'static str> {
    Action::names()
}

pub struct Engine {
    commands: Arc<CommandService>,
    plans: Arc<PlanService>,
    incidents: Arc<IncidentService>,
    reports: Arc<ReportService>,
    settings: Arc<Settings>,
    catalog: Arc<Catalog>,
    cloud: Arc<dyn Cloud>,
    chat: Arc<dyn Chat>,
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
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
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let reports = ReportService::new(ReportParts {
            settings: p.settings.clone(),
            cloud: p.cloud.clone(),
            chat: p.chat.clone(),
            store: p.store.clone(),
            metrics: p.metrics.clone(),
            clock: p.clock.clone(),
            tz: p.tz,
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        });
        let incidents = IncidentService::new(IncidentParts {
            settings: p.settings.clone(),
            catalog: p.catalog.clone(),
            charts: p.charts.clone(),
            cloud: p.cloud.clone(),
            chat: p.chat.clone(),
            store: p.store.clone(),
            clock: p.clock.clone(),
            tz: p.tz,
            region: p.region.clone(),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        });
        let plans = PlanService::new(PlanParts {
            settings: p.settings.clone(),
            catalog: p.catalog.clone(),
            cloud: p.cloud.clone(),
            chat: p.chat.clone(),
            store: p.store.clone(),
            clock: p.clock.clone(),
            tz: p.tz,
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
            incidents: incidents.clone(),
            reports: reports.clone(),
        });
        let commands = Arc::new(CommandService {
            settings: p.settings.clone(),
            catalog: p.catalog.clone(),
            charts: p.charts,
            cloud: p.cloud.clone(),
            drills: p.drills,
            chat: p.chat.clone(),
            store: p.store.clone(),
            clock: p.clock.clone(),
            tz: p.tz,
            region: p.region,
            tasks: tasks.clone(),
            plans: plans.clone(),
            incidents: incidents.clone(),
            reports: reports.clone(),
        });
        Arc::new(Self {
            commands,
            plans,
            incidents,
            reports,
            settings: p.settings,
            catalog: p.catalog,
            cloud: p.cloud,
            chat: p.chat,
            store: p.store,
            metrics: p.metrics,
            clock: p.clock,
            tasks,
            shutdown,
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
        // Monitors and the sweeps stop; commands in flight finish.
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "audit flush at shutdown failed");
        }
    }

    /// A verified command: answered at once, run in the background.
    pub async fn accept(&self, req: CommandRequest) -> Ack {
        self.commands.accept(req).await
    }

    /// A verified click; runs after the ingress has acknowledged it.
    pub async fn on_button(&self, ev: ButtonEvent) {
        self.commands.on_button(ev).await
    }

    /// One alarm state change, from SNS, EventBridge or the demo.
    pub async fn on_alarm(&self, alarm: Alarm) -> Result<(), ActionError> {
        self.incidents.on_alarm(alarm).await
    }

    /// A stored message from AWS: handled, then marked processed.
    pub async fn take_in(&self, message_id: &str, inbound: Inbound) -> Result<(), ActionError> {
        self.incidents.take_in(message_id, inbound).await
    }

    /// The sweeps that must run every second: escalation, reminders,
    /// auto-resolve and plan expiry, each its own task so that a slow one
    /// does not hold up the others.
    pub fn spawn_sweeps(&self) {
        self.plans.spawn_expiry();
        self.incidents.spawn_sweeps(Duration::from_secs(1));
    }

    /// The report scheduler.
    pub fn spawn_reports(&self) {
        self.reports.spawn_reports();
    }

    /// One pass of the report scheduler; the reports it posted.
    pub async fn reports_tick(&self) -> Vec<ReportKind> {
        self.reports.reports_tick().await
    }
}
