//! Policy snapshots: the scalable targets and scaling policies of the
//! namespaces the runbook touches, stored as JSON before every change the
//! bot makes (and daily), replacing the runbook's hand-kept
//! `backup/lambda-policy-${DATE}.json` files.

use serde::{Deserialize, Serialize};

use super::incident::short_id;
use super::{ActionError, Engine};
use crate::cloud::{ScalableTarget, ScalingPolicy};
use crate::store::SnapshotRow;

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

impl Engine {
    /// Reads and stores a snapshot; returns its id and the namespaces it
    /// could not read. A namespace that fails (a missing permission, a
    /// service not used in this account) does not spoil the others.
    pub async fn take_snapshot(&self, reason: &str) -> Result<(String, Vec<String>), ActionError> {
        let mut snap = Snapshot::default();
        for ns in NAMESPACES {
            let read = async {
                Ok::<_, crate::cloud::CloudError>((
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
            return Err(ActionError::Refused(format!(
                "no scaling policies could be read ({})",
                snap.missing.join("; ")
            )));
        }
        let now = self.now();
        let row = SnapshotRow {
            id: short_id("S"),
            taken_ms: now.timestamp_millis(),
            day: now.with_timezone(&self.tz).format("%Y-%m-%d").to_string(),
            reason: reason.to_owned(),
            body: serde_json::to_string(&snap).map_err(|e| ActionError::Spec(e.to_string()))?,
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
