//! Plans nobody confirmed in time: claimed as expired (by one replica),
//! redrawn without buttons and said in the thread.

use std::sync::Arc;
use std::time::Duration;

use super::{PlanService, View};
use crate::chat::{Message, Text};
use crate::domain::state::PlanState;
use crate::engine::request::ActionError;
use crate::store::PlanRow;

impl PlanService {
    /// Marks a pending plan expired (if nobody else did) and says so.
    pub(super) async fn expire(&self, plan: &PlanRow) -> Result<(), ActionError> {
        let now = self.now().timestamp_millis();
        if !self
            .store
            .transition_plan(&plan.id, PlanState::Expired, now)
            .await?
        {
            return Ok(());
        }
        self.store
            .finish_plan(&plan.id, PlanState::Expired, "[]", now)
            .await?;
        self.announce_expired(plan).await
    }

    pub(super) async fn announce_expired(&self, plan: &PlanRow) -> Result<(), ActionError> {
        let text =
            "⌛ Expired unconfirmed; nothing was changed. Run the command again for a fresh plan."
                .to_owned();
        self.redraw(plan, View::Closed(text.as_str().into())).await;
        if let Some(incident) = self.incident_of(plan).await {
            self.incidents
                .thread(
                    &incident,
                    "scalebot",
                    "expired",
                    &Message::text(
                        Text::from(format!("Plan `{}`: ", plan.id)).append(text.clone().into()),
                    ),
                )
                .await?;
        }
        Ok(())
    }

    /// Every second until shutdown: expires due plans. Several replicas
    /// may run this; the conditional update lets one of them announce each.
    pub fn spawn_expiry(self: &Arc<Self>) {
        let me = self.clone();
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                match me.store.expire_due_plans(me.now().timestamp_millis()).await {
                    Ok(expired) => {
                        for plan in expired {
                            if let Err(e) = me.announce_expired(&plan).await {
                                tracing::warn!(plan = %plan.id, error = %e, "expiry not announced");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
            }
        });
    }
}
