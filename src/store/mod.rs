//! The store: sqlx with embedded migrations, an SQLite file by default and
//! PostgreSQL for several replicas, through the same portable SQL.

mod audit;
mod escalations;
mod inbox;
mod incidents;
mod leases;
mod openings;
mod pages;
mod plans;
pub(crate) mod renew;
mod repeats;
mod replays;
mod reports;
mod silences;
mod snapshots;
mod sns;
mod watches;

pub use audit::{AuditEntry, AuditId};
pub use escalations::LevelUp;
pub use inbox::{Claimed, Finish, PendingSns};
pub use incidents::{FirstSteps, IncidentEvent, IncidentRow, Opened};
pub use openings::OpeningStep;
pub use pages::{NewPage, PAGERDUTY, PageRow, SNS_PAGE};
pub use plans::PlanRow;
pub use repeats::{RepeatNote, RepeatWindow};
pub use replays::{CLOCK_MARGIN_SECS, SeenRequest, Sighting};
pub use reports::ReportRun;
pub use silences::{SilenceRow, SilencedAlarm};
pub use snapshots::{DAILY as DAILY_SNAPSHOT, SnapshotRow};
pub use sns::SnsRecord;
pub use watches::WatchRow;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use tokio::sync::{mpsc, oneshot};

use crate::config::StoreSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {url} cannot be opened: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("the store's migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("the batch this write was in failed: {0}")]
    Batch(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: mpsc::Sender<audit::Op>,
    sns_writer: mpsc::Sender<sns::SnsOp>,
    replay_writer: mpsc::Sender<replays::ReplayOp>,
}

/// Adds `mode=rwc` so that a new SQLite file is created on first start.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// The URL with any password hidden, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Store {
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if settings.url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url(&settings.url))
        } else {
            (Backend::Postgres, settings.url.clone())
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; NORMAL
                    // sync is durable across process crashes in WAL mode.
                    // Checkpoints (which sync the database file) run in the
                    // background task below, not inside a commit that an
                    // SNS delivery or a Slack ack is waiting for.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact_url(&settings.url),
                source,
            })?;
        MIGRATOR.run(&pool).await?;
        if backend == Backend::Sqlite {
            spawn_checkpointer(pool.clone());
        }
        let writer = audit::spawn_writer(pool.clone());
        // On PostgreSQL every statement is a round trip, and the work
        // queue's many readers can hold all of the pool's connections: the
        // SNS writer, whose commits every 2xx waits for, has its own.
        let sns_pool = match backend {
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&url)
                .await
                .map_err(|source| StoreError::Connect {
                    url: redact_url(&settings.url),
                    source,
                })?,
            Backend::Sqlite => pool.clone(),
        };
        let sns_writer = sns::spawn_sns_writer(sns_pool);
        let replay_writer = replays::spawn_replay_writer(pool.clone());
        Ok(Self {
            pool,
            backend,
            writer,
            sns_writer,
            replay_writer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// For `/readyz`: the store answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits until every audit write queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(audit::Op::Flush(tx))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)
    }
}

/// Copies the SQLite WAL back into the database every second. PASSIVE
/// never waits for writers, so commits go on while it runs.
fn spawn_checkpointer(pool: AnyPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint skipped");
            }
        }
    });
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A state column read into its enum; an unknown value is a decode error.
fn decode_state<T>(r: &sqlx::any::AnyRow) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr<Err = crate::domain::state::UnknownState>,
{
    use sqlx::Row;
    let text: String = r.try_get("state")?;
    text.parse()
        .map_err(|e: crate::domain::state::UnknownState| sqlx::Error::Decode(Box::new(e)))
}
