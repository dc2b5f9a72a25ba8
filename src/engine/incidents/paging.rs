//! Pages outside chat as owed work. Reaching a level stores its pages
//! (`escalation.rs`, in the same transaction as the level); this sweep
//! claims due ones under a lease it renews, sends each (SNS Publish, or a
//! PagerDuty event), retries a failure with backoff, records the outcome
//! and then says it in the incident's thread. SNS is at-least-once: a
//! replica that dies between Publish and recording the send leaves the
//! page to be sent again by another. PagerDuty events carry the incident's
//! dedup key, so a repeat changes nothing there.

use std::sync::Arc;

use super::IncidentService;
use crate::chat::{Message, Tone};
use crate::engine::request::ActionError;
use crate::pager::{PageError, PdAction, PdEvent, dedup_key};
use crate::store::{IncidentRow, NewPage, PAGERDUTY, PageRow, SNS_PAGE};

/// How long a claim on a page lasts without renewal.
const PAGE_LEASE_MS: i64 = 8_000;
/// After a failed thread line, when it is tried again.
const POST_RETRY_MS: i64 = 2_000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 300_000;

/// What became of a page, before it is said in the thread.
struct Outcome {
    kind: &'static str,
    detail: String,
}

impl IncidentService {
    /// The pages an incident owes when it reaches `level`.
    pub(crate) fn pages_for(&self, level: i64) -> Vec<NewPage> {
        let Some(settings) = usize::try_from(level - 1)
            .ok()
            .and_then(|i| self.settings.escalation.levels.get(i))
        else {
            return Vec::new();
        };
        let mut pages: Vec<NewPage> = settings
            .sns_topics
            .iter()
            .map(|topic| NewPage {
                level,
                target: format!("sns:{topic}"),
                action: SNS_PAGE.into(),
            })
            .collect();
        if settings.pagerduty {
            pages.push(NewPage {
                level,
                target: PAGERDUTY.into(),
                action: PdAction::Trigger.as_str().into(),
            });
        }
        pages
    }

    /// Sends (or says) every page that is due and not held by anyone.
    pub(crate) async fn send_due_pages(self: &Arc<Self>) -> Result<(), ActionError> {
        let now = crate::store::now_ms();
        if self.settings.escalation.levels.iter().any(|l| l.pagerduty) {
            let created = self.now().timestamp_millis();
            self.store.owe_pagerduty_followups(created, now).await?;
        }
        // One page claimed at a time: work on a page renews its lease only,
        // so pages claimed together would lapse while the first is sent and
        // another replica would send them too.
        for _ in 0..20 {
            let now = crate::store::now_ms();
            let Some(page) = self
                .store
                .claim_due_pages(now, now + PAGE_LEASE_MS, 1)
                .await?
                .pop()
            else {
                break;
            };
            let id = page.id.clone();
            let worked = crate::store::renew::renewing(self.work_page(page), || {
                let until = crate::store::now_ms() + PAGE_LEASE_MS;
                self.store.renew_page(&id, until)
            })
            .await;
            if let Err(e) = worked {
                tracing::warn!(page = %id, error = %e, "page not finished; tried again");
                let retry = crate::store::now_ms() + POST_RETRY_MS;
                self.store.page_post_failed(&id, retry).await?;
            }
        }
        Ok(())
    }

    /// One claimed page: sent unless it already has its outcome, then said.
    async fn work_page(&self, page: PageRow) -> Result<(), ActionError> {
        let Some(incident) = self.store.incident(&page.incident_id).await? else {
            tracing::warn!(page = %page.id, incident = %page.incident_id, "page of no incident; dropped");
            self.store.page_posted(&page.id).await?;
            return Ok(());
        };
        let outcome = match (&page.outcome, &page.detail) {
            (Some(kind), detail) => Outcome {
                kind: outcome_kind(kind),
                detail: detail.clone().unwrap_or_default(),
            },
            (None, _) => match self.attempt(&incident, &page).await? {
                Some(outcome) => outcome,
                // Retried later; nothing to say yet.
                None => return Ok(()),
            },
        };
        let line = page_line(&page, &outcome);
        self.thread(&incident, "scalebot", outcome_event(outcome.kind), &line)
            .await?;
        self.store.page_posted(&page.id).await?;
        Ok(())
    }

    /// One attempt at sending: the outcome once there is one, or `None`
    /// when the page is owed again later.
    async fn attempt(
        &self,
        incident: &IncidentRow,
        page: &PageRow,
    ) -> Result<Option<Outcome>, ActionError> {
        let attempts = page.attempts + 1;
        let result = if stale(incident, page) {
            Err(Failed::Skipped(
                "the incident was resolved before it went out".into(),
            ))
        } else {
            self.deliver(incident, page).await.map_err(Failed::from)
        };
        let (kind, detail) = match result {
            Ok(detail) => ("sent", detail),
            Err(Failed::Skipped(why)) => ("skipped", why),
            Err(Failed::Retry(why)) if attempts < self.max_page_attempts() => {
                tracing::warn!(page = %page.id, incident = %incident.id, attempts, error = %why, "page failed; retried");
                let retry = crate::store::now_ms() + self.backoff_ms(attempts);
                self.store
                    .page_retry(&page.id, attempts, retry, &why)
                    .await?;
                return Ok(None);
            }
            Err(Failed::Retry(why) | Failed::Refused(why)) => {
                tracing::error!(page = %page.id, incident = %incident.id, attempts, error = %why, "page failed for good");
                ("failed", format!("after {attempts} attempt(s): {why}"))
            }
        };
        let now = self.now().timestamp_millis();
        if !self
            .store
            .page_finished(&page.id, attempts, kind, &detail, now)
            .await?
        {
            // Another replica recorded it first; it says it too.
            return Ok(None);
        }
        Ok(Some(Outcome { kind, detail }))
    }

    fn max_page_attempts(&self) -> i64 {
        i64::from(self.settings.paging.max_attempts)
    }

    /// The wait after the `attempts`-th failure: doubling, capped.
    fn backoff_ms(&self, attempts: i64) -> i64 {
        let first = self.settings.paging.retry_after_ms;
        let shift = u32::try_from(attempts - 1).unwrap_or(0).min(20);
        let wait = first.saturating_mul(1u64 << shift).min(MAX_BACKOFF_MS);
        i64::try_from(wait).unwrap_or(i64::MAX)
    }

    /// Sends the page; what the peer said (SNS's message id).
    async fn deliver(&self, incident: &IncidentRow, page: &PageRow) -> Result<String, PageError> {
        let facts = self
            .page_facts(incident, page.level.max(incident.level))
            .await
            .map_err(|e| PageError::Retry(e.to_string()))?;
        if let Some(topic) = page.target.strip_prefix("sns:") {
            let sns = self.pagers.sns.as_ref().ok_or_else(|| {
                PageError::Refused("no SNS client is configured for pages".into())
            })?;
            let id = sns.publish(&facts.sns(topic)).await?;
            return Ok(format!("SNS message {id}"));
        }
        let action = PdAction::parse(&page.action)
            .ok_or_else(|| PageError::Refused(format!("unknown action {}", page.action)))?;
        let pd = self.pagers.pagerduty.as_ref().ok_or_else(|| {
            PageError::Refused(
                "PAGERDUTY_ROUTING_KEY is not set, so PagerDuty cannot be paged".into(),
            )
        })?;
        let event = PdEvent {
            action,
            dedup_key: dedup_key(&incident.id),
            trigger: (action == PdAction::Trigger)
                .then(|| facts.pagerduty(page.level, incident.severity)),
        };
        pd.send(&event).await?;
        Ok(format!("dedup key {}", event.dedup_key))
    }
}

/// Why a page was not sent on this attempt: worth another, not, or no
/// longer wanted.
enum Failed {
    Retry(String),
    Refused(String),
    Skipped(String),
}

impl From<PageError> for Failed {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Retry(why) => Failed::Retry(why),
            PageError::Refused(why) => Failed::Refused(why),
        }
    }
}

/// A page or trigger for an incident resolved meanwhile wakes nobody.
fn stale(incident: &IncidentRow, page: &PageRow) -> bool {
    incident.state == crate::domain::state::IncidentState::Resolved
        && (page.action == SNS_PAGE || page.action == PdAction::Trigger.as_str())
}

fn outcome_kind(stored: &str) -> &'static str {
    match stored {
        "sent" => "sent",
        "skipped" => "skipped",
        _ => "failed",
    }
}

/// The timeline event's kind.
fn outcome_event(kind: &str) -> &'static str {
    match kind {
        "sent" => "paged",
        "skipped" => "page_skipped",
        _ => "page_failed",
    }
}

/// The page's line in the incident's thread.
fn page_line(page: &PageRow, outcome: &Outcome) -> Message {
    let whom = match page.target.strip_prefix("sns:") {
        Some(topic) => format!("L{} SNS topic `{topic}`", page.level),
        None if page.action == PdAction::Trigger.as_str() => format!("L{} PagerDuty", page.level),
        None => format!("PagerDuty ({})", page.action),
    };
    let (tone, text) = match outcome.kind {
        "sent" => (
            Tone::Neutral,
            format!("📟 Paged {whom}: {}.", outcome.detail),
        ),
        "skipped" => (
            Tone::Neutral,
            format!("📟 Not paged {whom}: {}.", outcome.detail),
        ),
        _ => (
            Tone::Bad,
            format!("❌ Page to {whom} failed {}.", outcome.detail),
        ),
    };
    Message {
        tone,
        text: text.into(),
        ..Default::default()
    }
}
