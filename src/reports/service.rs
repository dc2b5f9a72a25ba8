//! Scheduled reports: the sweep that finds a due report, claims its slot in
//! the store (so that of several replicas, and across restarts, exactly one
//! posts it), builds it and posts it through the Chat port. The reports
//! themselves are in the sibling modules.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::snapshot::{SnapshotError, Snapshotter};
use crate::chat::{Chat, ChatError, MessageRef};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::domain::state::ReportRunState;
use crate::metrics::Metrics;
use crate::reports::{self, Report, ReportKind, Scope};
use crate::store::{DAILY_SNAPSHOT, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Posts the reports, on schedule and on demand, and takes the policy
/// snapshots (daily here; before every change for the plans).
pub struct ReportService {
    settings: Arc<Settings>,
    cloud: Arc<dyn Cloud>,
    chat: Arc<dyn Chat>,
    store: Store,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    tz: Tz,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

pub struct ReportParts {
    pub settings: Arc<Settings>,
    pub cloud: Arc<dyn Cloud>,
    pub chat: Arc<dyn Chat>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub tz: Tz,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

/// How long a report slot is held without renewal (wall clock, ms): a few
/// renewals, so that only a replica that stopped loses it.
const REPORT_LEASE_MS: i64 = 8_000;

impl ReportService {
    pub fn new(p: ReportParts) -> Arc<Self> {
        Arc::new(Self {
            settings: p.settings,
            cloud: p.cloud,
            chat: p.chat,
            store: p.store,
            metrics: p.metrics,
            clock: p.clock,
            tz: p.tz,
            tasks: p.tasks,
            shutdown: p.shutdown,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn retry_unposted_after(&self) -> chrono::Duration {
        i64::try_from(self.settings.reports.retry_unposted_seconds)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX)
    }

    /// Reads and stores a snapshot of the scaling policies (see
    /// [`Snapshotter::take`]).
    pub async fn take_snapshot(
        &self,
        reason: &str,
    ) -> Result<(String, Vec<String>), SnapshotError> {
        Snapshotter {
            cloud: self.cloud.as_ref(),
            store: &self.store,
            now: self.now(),
            tz: self.tz,
        }
        .take(reason)
        .await
    }

    /// Builds a report from what AWS answers now.
    pub async fn build_report(&self, kind: ReportKind) -> Report {
        let mut scope = Scope::from_settings(&self.settings);
        // The cache's nodes as its group lists them: cluster-mode nodes are
        // `<group>-0001-001`, so a name cannot be guessed from the group.
        let mut unread = None;
        if kind == ReportKind::Daily && scope.cache_clusters.is_empty() {
            let group = &self.settings.runbook.cache_group;
            match self.cloud.replication_group(group).await {
                Ok(g) => scope.cache_clusters = g.members,
                Err(e) => unread = Some(format!("the nodes of `{group}` could not be read ({e})")),
            }
        }
        let mut report = reports::build(kind, self.cloud.as_ref(), &scope, self.now()).await;
        if let Some(why) = unread {
            report.message = report.message.field("🔄 ElastiCache", why);
        }
        report
    }

    /// Builds and posts a report to `channel`, its charts in the thread.
    /// The scheduled daily report also stores the day's policy snapshot
    /// and prunes old ones; that outcome is one more part of the report.
    /// `answers` is the user whose command asked for it (none: scheduled).
    pub async fn post_report(
        &self,
        kind: ReportKind,
        channel: &str,
        answers: Option<&str>,
    ) -> Result<MessageRef, ReportError> {
        let mut report = self.build_report(kind).await;
        report.message.answers = answers.map(str::to_owned);
        if answers.is_none() && kind == ReportKind::Daily {
            let (label, value) = self.daily_snapshot().await;
            report.message = report.message.field(label, value);
        }
        Ok(reports::post(self.chat.as_ref(), channel, &report).await?)
    }

    /// Stores the day's snapshot of scalable targets and policies and
    /// deletes daily snapshots older than the retention; the result as a
    /// report field.
    async fn daily_snapshot(&self) -> (String, String) {
        let label = "📦 Policy snapshot".to_owned();
        let day = self
            .now()
            .with_timezone(&self.tz)
            .format("%Y-%m-%d")
            .to_string();
        match self.take_snapshot(DAILY_SNAPSHOT).await {
            Ok((id, missing)) => {
                let days = self.settings.reports.snapshot_retention_days;
                let cutoff = self.now() - chrono::Duration::days(i64::from(days));
                let pruned = match self
                    .store
                    .prune_daily_snapshots(cutoff.timestamp_millis())
                    .await
                {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning old daily snapshots failed");
                        0
                    }
                };
                let mut value = format!(
                    "{id} stored: `/scale rollback {day}` restores it, `scalebot snapshot export --date {day}` prints it; kept {days} days"
                );
                if pruned > 0 {
                    value.push_str(&format!(" ({pruned} older removed)"));
                }
                if !missing.is_empty() {
                    value.push_str(&format!("; not included: {}", missing.join("; ")));
                }
                (label, value)
            }
            Err(e) => (
                format!("⚠️ {}", label.trim_start_matches("📦 ")),
                format!("not stored: {e}"),
            ),
        }
    }

    /// One pass of the scheduler: for each report, the latest slot at or
    /// before now is posted if it is within the catch-up window and this
    /// replica wins its claim. Returns the reports this call posted.
    pub async fn reports_tick(&self) -> Vec<ReportKind> {
        let now = self.now();
        let window = i64::try_from(self.settings.reports.catch_up_minutes)
            .ok()
            .and_then(chrono::Duration::try_minutes)
            .unwrap_or(chrono::Duration::MAX);
        let mut posted = Vec::new();
        for kind in ReportKind::ALL {
            let Some(slot) = kind.schedule(&self.settings).latest(now) else {
                continue;
            };
            // Older than the window: missed for good (the bot was down
            // too long); the next slot will come.
            if now - slot > window {
                continue;
            }
            match self.run_slot(kind, slot, now).await {
                Ok(true) => posted.push(kind),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(report = kind.key(), error = %e, "scheduled report failed")
                }
            }
        }
        posted
    }

    /// Claims and posts one slot; false when another replica (or an
    /// earlier run of this bot) already has it. A slot whose message could
    /// not be posted stays `unposted` and is claimed again on a later pass,
    /// until its catch-up window ends; a posted one never is. The claim is
    /// a lease renewed while the report is built and posted: a replica
    /// that dies leaves the slot to be taken again (at least once; a crash
    /// between the post and its record can give a second copy).
    async fn run_slot(
        &self,
        kind: ReportKind,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, ReportError> {
        let slot_ms = slot.timestamp_millis();
        let now_ms = now.timestamp_millis();
        let lease = || crate::store::now_ms() + REPORT_LEASE_MS;
        let won = self
            .store
            .claim_report(kind.key(), slot_ms, now_ms, lease())
            .await?
            || self
                .store
                .retake_report(
                    kind.key(),
                    slot_ms,
                    now_ms,
                    now.checked_sub_signed(self.retry_unposted_after())
                        .map_or(i64::MIN, |t| t.timestamp_millis()),
                    lease(),
                )
                .await?;
        if !won {
            return Ok(false);
        }
        let late = now - slot;
        tracing::info!(report = kind.key(), slot = %slot, late_seconds = late.num_seconds(), "posting scheduled report");
        let channel = self.settings.channels.reports.clone();
        let result = crate::store::renew::renewing(self.post_report(kind, &channel, None), || {
            self.store.renew_report_lease(kind.key(), slot_ms, lease())
        })
        .await;
        let outcome = if result.is_ok() {
            ReportRunState::Posted
        } else {
            ReportRunState::Unposted
        };
        self.metrics.scheduled_report(kind.key(), outcome.as_str());
        self.store
            .finish_report(kind.key(), slot_ms, self.now().timestamp_millis(), outcome)
            .await?;
        result.map(|_| true)
    }

    /// The scheduler loop, until shutdown.
    pub fn spawn_reports(self: &Arc<Self>) {
        if !self.settings.reports.enabled {
            return;
        }
        let engine = self.clone();
        let stop = self.shutdown.clone();
        let every = Duration::from_secs(self.settings.reports.check_interval_seconds.max(1));
        self.tasks.spawn(async move {
            loop {
                // A report missed while the bot was down is due at once.
                engine.reports_tick().await;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }
}
