//! The worker on the stored-message queue (`store::inbox`), one per
//! replica: claims due messages with a lease, renews its leases while it
//! lives, takes each in (one alarm's messages in order, different alarms
//! side by side), and finishes each with its outcome or retries it with
//! backoff. A message whose alarm has a newer state change stored is
//! history: it goes into the timeline and opens nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::incidents::{Inbound, IncidentService};
use crate::alarm::{Alarm, AlarmState};
use crate::sns::SnsMessage;
use crate::store::{Claimed, Finish, RepeatNote, Store};

/// How long a claim holds without renewal: a replica that died is taken
/// over after at most this.
pub const LEASE: Duration = Duration::from_secs(8);
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// Alarms taken in side by side.
const IN_FLIGHT: usize = 64;
/// Rows claimed per free slot.
const CLAIM_PER_SLOT: usize = 8;
/// Then the message is finished as given up (logged as an error): about an
/// hour of retries at the capped backoff.
pub const MAX_ATTEMPTS: i64 = 20;
const MAX_BACKOFF_MS: i64 = 300_000;
/// The outcome of an alarm message that was applied.
pub const APPLIED: &str = "alarm";
/// Polled this often for retries and for rows another replica let go.
const POLL: Duration = Duration::from_millis(500);

/// What a stored body is. `Err` means "not now" (confirming a subscription
/// with AWS failed, say): the message is retried.
#[async_trait::async_trait]
pub trait Decoder: Send + Sync {
    async fn decode(&self, body: &str) -> Result<Inbound, String>;
}

/// A stored SNS notification's message, as an alarm or as what it is not.
pub fn notification(msg: &SnsMessage) -> Inbound {
    match Alarm::from_message(&msg.message) {
        Ok(alarm) => Inbound::Alarm(Box::new(alarm)),
        Err(e) => Inbound::NotUnderstood {
            topic: msg.topic_arn.clone(),
            subject: msg.subject.clone(),
            why: format!("not a CloudWatch alarm ({e})"),
        },
    }
}

/// The delay before attempt `attempts + 1`.
fn backoff_ms(attempts: i64) -> i64 {
    let exp = attempts.clamp(0, 20) as u32;
    (1000_i64 << exp).min(MAX_BACKOFF_MS)
}

pub(crate) struct Worker {
    pub incidents: Arc<IncidentService>,
    pub store: Store,
    pub decoder: Arc<dyn Decoder>,
    /// This replica, as lease holder and `processed_by`.
    pub holder: String,
    pub wake: Arc<Notify>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

impl Worker {
    pub(crate) fn spawn(self: Arc<Self>) {
        let me = self.clone();
        self.tasks.spawn(async move { me.renew_leases().await });
        let me = self.clone();
        self.tasks.spawn(async move { me.claim_loop().await });
    }

    async fn renew_leases(&self) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(RENEW_EVERY) => {}
            }
            let now = crate::store::now_ms();
            let until = now + LEASE.as_millis() as i64;
            if let Err(e) = self
                .store
                .renew_inbox_leases(&self.holder, now, until)
                .await
            {
                tracing::warn!(error = %e, "work queue leases not renewed");
            }
        }
    }

    async fn claim_loop(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            // Several rows per alarm in one claim: one alarm's rows are
            // taken in order by one task, so a storm on few alarms is not
            // limited by one row per alarm per claim.
            let free = (slots.available_permits().max(1) * CLAIM_PER_SLOT) as i64;
            let now = crate::store::now_ms();
            let until = now + LEASE.as_millis() as i64;
            let claimed = match self.store.claim_inbox(&self.holder, now, until, free).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "work queue not read");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            for group in by_alarm(claimed) {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                self.tasks.spawn(async move {
                    // The finishes go through the writer's next batch: what
                    // this group applied is known here before it is stored.
                    let mut state = GroupState::of(&group);
                    for c in group {
                        me.handle(&c, &mut state).await;
                    }
                    // The alarm is free for a claim once its finishes are
                    // committed: then the loop is told to claim again.
                    if let Err(e) = me.store.flush_sns().await {
                        tracing::warn!(error = %e, "work queue finishes not flushed");
                    }
                    drop(slot);
                    me.wake.notify_one();
                });
            }
        }
    }

    /// Takes one message in and records how that went.
    async fn handle(&self, c: &Claimed, g: &mut GroupState) {
        let result = self.attempt(c, g).await;
        let now = crate::store::now_ms();
        let mut repeat = None;
        g.repeating = None;
        let outcome = match result {
            Ok((outcome, counted)) => {
                if outcome == APPLIED {
                    g.applied = g.applied.max(c.changed_ms);
                    g.repeating.clone_from(&counted);
                }
                repeat = counted;
                outcome
            }
            Err(e) if c.attempts >= MAX_ATTEMPTS => {
                tracing::error!(message_id = %c.message_id, attempts = c.attempts, error = %e, "stored message given up");
                format!("gave up after {} attempts: {e}", c.attempts)
            }
            Err(e) => {
                let retry_at = now + backoff_ms(c.attempts);
                tracing::warn!(message_id = %c.message_id, attempts = c.attempts, error = %e, "stored message will be retried");
                if let Err(e) = self
                    .store
                    .retry_inbox(&c.message_id, &self.holder, retry_at, &e)
                    .await
                {
                    // The lease runs out and the row is retried anyway.
                    tracing::warn!(message_id = %c.message_id, error = %e, "retry not recorded");
                }
                return;
            }
        };
        let applied = match (&c.alarm_key, c.changed_ms) {
            (Some(key), Some(changed)) if outcome == APPLIED => Some((key.clone(), changed)),
            _ => None,
        };
        let finish = Finish {
            message_id: c.message_id.clone(),
            outcome,
            by: self.holder.clone(),
            at_ms: now,
            applied,
            repeat,
        };
        if let Err(e) = self.store.finish_inbox(finish).await {
            tracing::warn!(message_id = %c.message_id, error = %e, "finish not recorded");
        }
    }

    /// An alarm's message older than the state already applied is history
    /// (the timeline only); one with a newer message stored behind it does
    /// not open an incident; an ALARM right after a repeat of the same
    /// alarm is one more repeat.
    async fn attempt(
        &self,
        c: &Claimed,
        g: &mut GroupState,
    ) -> Result<(String, Option<RepeatNote>), String> {
        let inbound = self.decoder.decode(&c.body).await?;
        let mut superseded = false;
        if let (Inbound::Alarm(alarm), Some(key), Some(changed)) =
            (&inbound, &c.alarm_key, c.changed_ms)
        {
            if !g.read {
                let stored = self
                    .store
                    .applied_alarm_ms(key)
                    .await
                    .map_err(|e| e.to_string())?;
                g.applied = g.applied.max(stored);
                g.read = true;
            }
            if g.applied.is_some_and(|applied| changed < applied) {
                self.incidents
                    .note_stale(alarm)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(("stale: older than the state already applied".into(), None));
            }
            if let (Some(AlarmState::Alarm), Some(last)) = (alarm.state(), &g.repeating) {
                let reason = alarm.new_state_reason.clone().unwrap_or_default();
                return Ok((APPLIED.into(), Some(last.again(reason))));
            }
            superseded = g.newest.is_some_and(|newest| newest > changed)
                || self
                    .store
                    .newer_alarm_message(key, changed)
                    .await
                    .map_err(|e| e.to_string())?;
        }
        self.incidents
            .take_in(&c.message_id, inbound, superseded)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What one alarm's group knows while it takes its messages in, in order.
/// Nobody else holds this alarm's messages meanwhile (the claim skips an
/// alarm in flight), so this is exact for the group's life, not a cache.
#[derive(Debug, Default)]
struct GroupState {
    /// The newest state change applied: stored, or by this group.
    applied: Option<i64>,
    /// Whether `applied` was read from the store yet.
    read: bool,
    /// The newest `StateChangeTime` among the group's messages.
    newest: Option<i64>,
    /// The last message was an ALARM counted as a repeat of its incident.
    repeating: Option<RepeatNote>,
}

impl GroupState {
    fn of(group: &[Claimed]) -> Self {
        Self {
            newest: group.iter().filter_map(|c| c.changed_ms).max(),
            ..Self::default()
        }
    }
}

/// One group per alarm, in state-change order; anything else alone.
fn by_alarm(claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
    let mut groups: BTreeMap<String, Vec<Claimed>> = BTreeMap::new();
    let mut alone = Vec::new();
    for c in claimed {
        match c.alarm_key.clone() {
            Some(key) => groups.entry(key).or_default().push(c),
            None => alone.push(vec![c]),
        }
    }
    for g in groups.values_mut() {
        g.sort_by_key(|c| (c.changed_ms, c.message_id.clone()));
    }
    groups.into_values().chain(alone).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(id: &str, key: Option<&str>, changed: Option<i64>) -> Claimed {
        Claimed {
            message_id: id.into(),
            body: String::new(),
            alarm_key: key.map(str::to_owned),
            changed_ms: changed,
            attempts: 1,
        }
    }

    #[test]
    fn one_alarm_is_one_group_in_state_change_order() {
        let groups = by_alarm(vec![
            claimed("b2", Some("b"), Some(20)),
            claimed("x", None, None),
            claimed("a1", Some("a"), Some(5)),
            claimed("b1", Some("b"), Some(10)),
        ]);
        let ids: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|c| c.message_id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["a1"], vec!["b1", "b2"], vec!["x"]]);
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff_ms(1), 2000);
        assert_eq!(backoff_ms(2), 4000);
        assert_eq!(backoff_ms(8), 256_000);
        assert_eq!(backoff_ms(9), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(MAX_ATTEMPTS), MAX_BACKOFF_MS);
    }
}
