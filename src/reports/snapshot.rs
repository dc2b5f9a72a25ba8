//! Policy snapshots: the scalable targets and scaling policies of the
//! namespaces the runbook touches, stored as JSON before every change the
//! bot makes (and daily), replacing the runbook's hand-kept
//! `backup/lambda-policy-${DATE}.json` files.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::cloud::{Cloud, CloudError, ScalableTarget, ScalingPolicy};
use crate::domain::short_id;
use crate::store::{SnapshotRow, Store, StoreError};

/// The service namespaces whose policies the runbook backs up.
pub const NAMESPACES: &[&str] = &["lambda", "elasticache"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub targets: Vec<ScalableTarget>,
    pub policies: Vec<ScalingPolicy>,
    /// Namespaces that could not be read, with the reason; a rollback
    /// leaves them alone.
    #[serde(default)]
    pub missing: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no scaling policies could be read ({0})")]
    NothingRead(String),
    #[error("the snapshot could not be written as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What taking a snapshot needs.
pub struct Snapshotter<'a> {
    pub cloud: &'a dyn Cloud,
    pub store: &'a Store,
    pub now: DateTime<Utc>,
    /// The day a snapshot is filed under (`/scale rollback <day>`).
    pub tz: Tz,
}

impl Snapshotter<'_> {
    /// Reads and stores a snapshot; returns its id and the namespaces it
    /// could not read. A namespace that fails (a missing permission, a
    /// service not used in this account) does not spoil the others.
    pub async fn take(&self, reason: &str) -> Result<(String, Vec<String>), SnapshotError> {
        let mut snap = Snapshot::default();
        for ns in NAMESPACES {
            let read = async {
                Ok::<_, CloudError>((
                    self.cloud.scalable_targets(ns).await?,
                    self.cloud.scaling_policies(ns).await?,
                ))
            };
            match read.await {
                Ok((targets, policies)) => {
                    snap.targets.extend(targets);
                    snap.policies.extend(policies);
                }
                Err(e) => snap.missing.push(format!("{ns}: {e}")),
            }
        }
        if snap.missing.len() == NAMESPACES.len() {
            return Err(SnapshotError::NothingRead(snap.missing.join("; ")));
        }
        let now = self.now;
        let row = SnapshotRow {
            id: short_id("S"),
            taken_ms: now.timestamp_millis(),
            day: now.with_timezone(&self.tz).format("%Y-%m-%d").to_string(),
            reason: reason.to_owned(),
            body: serde_json::to_string(&snap)?,
        };
        self.store.insert_snapshot(&row).await?;
        Ok((row.id, snap.missing))
    }
}

/// A stored snapshot as the JSON `scalebot snapshot export` prints: when
/// and why it was taken, then the targets and policies as they were.
pub fn export_json(row: &SnapshotRow) -> Result<String, serde_json::Error> {
    let snap: Snapshot = serde_json::from_str(&row.body)?;
    let taken = chrono::DateTime::from_timestamp_millis(row.taken_ms).unwrap_or_default();
    serde_json::to_string_pretty(&serde_json::json!({
        "id": row.id,
        "day": row.day,
        "taken": taken.to_rfc3339(),
        "reason": row.reason,
        "targets": snap.targets,
        "policies": snap.policies,
        "missing": snap.missing,
    }))
}
