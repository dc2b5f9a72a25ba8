//! The chat side of an incident's opening as owed work (`store::openings`):
//! the root message, then the alarm's chart, then the L1 diagnostics. An
//! alarm's message is finished once its incident is decided in the store;
//! these steps follow at the chat's pace, each recorded as it is done, and
//! are taken over by another replica when the one doing them dies.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::IncidentService;
use super::top_message::RootContext;
use crate::engine::request::ActionError;
use crate::store::{IncidentRow, OpeningStep};

/// How long a claim on an opening lasts without renewal: the replica doing
/// the steps renews it while it works (`engine::renew`), however long the
/// chat's pacing makes them, and another takes over within this after the
/// first dies.
const LEASE_MS: i64 = 8_000;
/// After a failed step (a chat error), when it is tried again.
const RETRY_MS: i64 = 2_000;
/// Openings followed up side by side (posts to one channel keep their
/// pace and order; different channels go in parallel).
const IN_FLIGHT: usize = 16;
const POLL: Duration = Duration::from_secs(1);

impl IncidentService {
    /// Follows up owed openings until shutdown: when told an incident was
    /// opened, and every second for ones whose step failed or whose
    /// replica died.
    pub(crate) fn spawn_openings(self: &Arc<Self>) {
        let me = self.clone();
        self.tasks.spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            loop {
                tokio::select! {
                    _ = me.shutdown.cancelled() => return,
                    _ = me.openings.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                if let Err(e) = me.follow_up_owed(&slots).await {
                    tracing::warn!(error = %e, "owed openings not read");
                }
            }
        });
    }

    async fn follow_up_owed(self: &Arc<Self>, slots: &Arc<Semaphore>) -> Result<(), ActionError> {
        let now = crate::store::now_ms();
        let free = slots.available_permits().max(1) as i64;
        for id in self.store.owed_openings(now, free).await? {
            let Some((incident, step)) = self.store.claim_opening(&id, now, now + LEASE_MS).await?
            else {
                continue;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let me = self.clone();
            self.tasks.spawn(async move {
                if let Err(e) = me.open_steps_renewing(incident, step).await {
                    tracing::warn!(incident = %id, error = %e, "incident opening will be retried");
                    let retry = crate::store::now_ms() + RETRY_MS;
                    if let Err(e) = me.store.release_opening(&id, retry).await {
                        tracing::warn!(incident = %id, error = %e, "opening not released; its lease runs out");
                    }
                }
                drop(slot);
            });
        }
        Ok(())
    }

    /// `open_steps` with the claim renewed while they run.
    async fn open_steps_renewing(
        self: &Arc<Self>,
        incident: IncidentRow,
        step: OpeningStep,
    ) -> Result<IncidentRow, ActionError> {
        let id = incident.id.clone();
        crate::store::renew::renewing(self.open_steps(incident, step), || {
            self.store
                .renew_opening(&id, crate::store::now_ms() + LEASE_MS)
        })
        .await
    }

    /// Does the owed steps from `step` on, recording each; the incident
    /// with its root message.
    async fn open_steps(
        self: &Arc<Self>,
        mut incident: IncidentRow,
        step: OpeningStep,
    ) -> Result<IncidentRow, ActionError> {
        let alarm = match incident
            .context
            .as_deref()
            .and_then(|c| serde_json::from_str::<RootContext>(c).ok())
        {
            Some(RootContext::Alarm(alarm)) => Some(alarm),
            _ => None,
        };
        let mut next = Some(step);
        while let Some(step) = next {
            match (step, &alarm) {
                (OpeningStep::Root, _) => {
                    if incident.root_message.is_none() {
                        incident = self.post_root(incident).await?;
                    }
                }
                (OpeningStep::Chart, Some(alarm)) => {
                    self.attach_alarm_chart(&incident, alarm).await?
                }
                (OpeningStep::Diagnostics, Some(alarm)) => self.diagnose(&incident, alarm).await?,
                (_, None) => {}
            }
            next = step.next();
            self.store.advance_opening(&incident.id, next).await?;
        }
        Ok(incident)
    }

    /// The opening of `incident`, now, by this caller (a command that
    /// needs its root message); `None` when another replica holds it.
    pub(crate) async fn open_now(
        self: &Arc<Self>,
        incident: &IncidentRow,
    ) -> Result<Option<IncidentRow>, ActionError> {
        let now = crate::store::now_ms();
        let Some((row, step)) = self
            .store
            .claim_opening(&incident.id, now, now + LEASE_MS)
            .await?
        else {
            return Ok(None);
        };
        match self.open_steps_renewing(row, step).await {
            Ok(row) => Ok(Some(row)),
            Err(e) => {
                // Owed still: the sweep tries again.
                let retry = crate::store::now_ms() + RETRY_MS;
                self.store.release_opening(&incident.id, retry).await?;
                Err(e)
            }
        }
    }
}
