//! The services: commands (parse, ack, run an action), plans (propose,
//! confirm, execute, expire, undo), incidents (alarm intake, top message,
//! escalation, the watch after a change) and, in `crate::reports`, the
//! scheduled reports. [`Engine`] only builds them and is what the
//! platforms hand verified input to; each service owns what it needs.

mod access;
pub(crate) mod commands;
pub mod inbox;
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
use crate::catalog::Catalog;
use crate::chart::ChartCatalog;
use crate::chat::Chat;
pub use crate::clock::{Clock, SystemClock};
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::drills::Drills;
use crate::metrics::Metrics;
use crate::pager::{NoticeOutcome, PagerDutyNotice, Pagers};
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
    /// This replica: the holder of its work-queue leases.
    holder: String,
    /// Wakes this replica's work-queue worker when a message is stored.
    inbox_wake: Arc<tokio::sync::Notify>,
}

/// A name for this process among the replicas: the host (a pod's name in
/// Kubernetes), the process id and a random part, so that a restarted
/// process never mistakes an earlier one's leases for its own.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "scalebot".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
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
    /// SNS and PagerDuty, for the pages of escalation levels.
    pub pagers: Pagers,
}

impl Engine {
    pub fn new(p: EngineParts) -> Arc<Self> {
        let holder = replica_name();
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
            pagers: p.pagers,
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
            holder: holder.clone(),
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
            holder,
            inbox_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// This replica's name in leases and in `processed_by`.
    pub fn replica(&self) -> &str {
        &self.holder
    }

    /// Starts this replica's worker on the stored-message queue.
    pub fn spawn_inbox(&self, decoder: Arc<dyn inbox::Decoder>) {
        Arc::new(inbox::Worker {
            incidents: self.incidents.clone(),
            store: self.store.clone(),
            decoder,
            holder: self.holder.clone(),
            wake: self.inbox_wake.clone(),
            tasks: self.tasks.clone(),
            shutdown: self.shutdown.clone(),
        })
        .spawn();
    }

    /// A message was stored: the worker claims it now rather than at its
    /// next poll.
    pub fn wake_inbox(&self) {
        self.inbox_wake.notify_one();
    }

    /// How long the oldest due, unclaimed message has waited, when the
    /// store can tell.
    pub async fn inbox_waiting(&self) -> Result<Duration, crate::store::StoreError> {
        let now = crate::store::now_ms();
        let due = self.store.oldest_unclaimed_due_ms(now).await?;
        Ok(Duration::from_millis(
            due.map(|d| (now - d).max(0) as u64).unwrap_or(0),
        ))
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

    /// A verified PagerDuty webhook event.
    pub async fn pagerduty(&self, notice: &PagerDutyNotice) -> Result<NoticeOutcome, ActionError> {
        self.incidents.pagerduty(notice).await
    }

    /// A verified click; runs after the ingress has acknowledged it.
    pub async fn on_button(&self, ev: ButtonEvent) {
        self.commands.on_button(ev).await
    }

    /// The sweeps that must run every second: escalation, reminders,
    /// auto-resolve, plan expiry, orphaned plans, owed incident openings
    /// and the silenced-alarm digest, each its own task so that a slow one does not hold up the
    /// others.
    pub fn spawn_sweeps(&self) {
        self.plans.spawn_expiry();
        self.plans.spawn_reaper();
        self.incidents.spawn_sweeps(Duration::from_secs(1));
        self.incidents.spawn_openings();
        self.incidents.spawn_silence_digest(Duration::from_secs(1));
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
