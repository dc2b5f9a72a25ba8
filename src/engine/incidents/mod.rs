//! The incident service: alarms in (intake), the incident's top message,
//! escalation and reminders, the watch after a change, and the incident
//! commands. An incident is opened (or joined) for every alarm and every
//! changing command; each step is stored before it is posted in its
//! thread.

mod alarm_message;
mod commands;
mod digest;
mod escalation;
mod inbox;
mod intake;
mod monitor;
mod opening;
mod page_text;
mod pagerduty_notice;
mod paging;
mod silences;
mod top_message;
mod verbs;

use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalog::{Catalog, Invocation};
use crate::chart::ChartCatalog;
use crate::chat::{Chat, Message, MessageRef};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::domain::short_id;
use crate::domain::state::IncidentState;
use crate::engine::request::{ActionError, CommandRequest, Outcome};
use crate::pager::{NoticeOutcome, PagerDutyNotice, Pagers};
use crate::store::{FirstSteps, IncidentEvent, IncidentRow, Opened, Store};

pub use inbox::Inbound;
use top_message::RootContext;
pub use verbs::IncidentVerb;

pub struct IncidentService {
    settings: Arc<Settings>,
    catalog: Arc<Catalog>,
    charts: Arc<ChartCatalog>,
    cloud: Arc<dyn Cloud>,
    chat: Arc<dyn Chat>,
    store: Store,
    clock: Arc<dyn Clock>,
    tz: Tz,
    region: String,
    /// SNS and PagerDuty, for the pages of escalation levels.
    pagers: Pagers,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// One alarm's notifications are handled one at a time, in order.
    alarm_locks: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Incidents whose root message is due for a (coalesced) redraw.
    redraws: DashMap<String, ()>,
    /// Told when an incident's opening is owed (`opening.rs`).
    openings: tokio::sync::Notify,
    /// The service itself, for work it schedules from `&self`.
    me: Weak<IncidentService>,
}

pub struct IncidentParts {
    pub settings: Arc<Settings>,
    pub catalog: Arc<Catalog>,
    pub charts: Arc<ChartCatalog>,
    pub cloud: Arc<dyn Cloud>,
    pub chat: Arc<dyn Chat>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub tz: Tz,
    pub region: String,
    pub pagers: Pagers,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

impl IncidentService {
    pub fn new(p: IncidentParts) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            settings: p.settings,
            catalog: p.catalog,
            charts: p.charts,
            cloud: p.cloud,
            chat: p.chat,
            store: p.store,
            clock: p.clock,
            tz: p.tz,
            region: p.region,
            pagers: p.pagers,
            tasks: p.tasks,
            shutdown: p.shutdown,
            alarm_locks: DashMap::new(),
            redraws: DashMap::new(),
            openings: tokio::sync::Notify::new(),
            me: me.clone(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// `/scale incidents`.
    pub async fn list(&self) -> Result<Outcome, ActionError> {
        commands::list(self).await
    }

    /// Whether `/scale incident …` acts on the incident (anything but
    /// `status` and `timeline`), so that it needs the incident-control roles.
    pub fn controls(inv: &Invocation) -> bool {
        commands::controls(inv)
    }

    /// `/scale incident <id> [verb]`.
    pub async fn command(
        &self,
        inv: &Invocation,
        req: &CommandRequest,
    ) -> Result<Outcome, ActionError> {
        commands::run(self, inv, req).await
    }

    /// A verified PagerDuty webhook about one of its incidents.
    pub async fn pagerduty(&self, notice: &PagerDutyNotice) -> Result<NoticeOutcome, ActionError> {
        self.pagerduty_notice(notice).await
    }

    /// The incident's timeline as a Markdown post-mortem.
    pub async fn timeline(&self, incident: &IncidentRow) -> Result<String, ActionError> {
        commands::timeline(self, incident).await
    }
}

/// What a new incident starts with.
pub(crate) struct NewIncident {
    pub title: String,
    pub level: i64,
    /// `manual` or `alarm`.
    pub source: &'static str,
    pub dedup_key: Option<String>,
    /// The first event's text (the alarm's reason); the title when empty.
    pub reason: String,
    /// What the root message is drawn from.
    pub context: RootContext,
    /// Who is already on it: the requester of a runbook action is, so the
    /// incident starts acknowledged and nobody is reminded to pick it up.
    pub acknowledged_by: Option<String>,
    /// From the config's rules, for an alarm's incident.
    pub severity: Option<crate::domain::severity::Severity>,
}

/// Short ids people can type: `INC-7F3K2Q`, `P-9XK2LD`.
pub(crate) fn level_name(level: i64) -> &'static str {
    match level {
        1 => "L1 automated response",
        2 => "L2 operations team",
        3 => "L3 engineering team",
        _ => "L4 emergency response",
    }
}

impl IncidentService {
    /// The incident a command's plan belongs to: the one given if it is
    /// still open, otherwise a new L2 "manual intervention" incident.
    pub(crate) async fn incident_for(
        &self,
        requester: &str,
        command: &str,
        existing: Option<&str>,
    ) -> Result<IncidentRow, ActionError> {
        if let Some(id) = existing
            && let Some(found) = self.store.incident(id).await?
            && found.state != IncidentState::Resolved
        {
            return Ok(found);
        }
        let new = NewIncident {
            title: format!("Manual intervention: /scale {command}"),
            level: 2,
            source: "manual",
            dedup_key: None,
            reason: String::new(),
            context: RootContext::Manual {
                requester: requester.to_owned(),
            },
            acknowledged_by: Some(requester.to_owned()),
            severity: None,
        };
        // No key, so never taken by another.
        let incident = self
            .open_incident(new, requester)
            .await?
            .ok_or_else(|| ActionError::Refused("an incident could not be opened".into()))?;
        // The plan's messages go into its thread: the root is posted now.
        let Some(me) = self.me.upgrade() else {
            return Ok(incident);
        };
        Ok(me.open_now(&incident).await?.unwrap_or(incident))
    }

    /// Stores a new incident with its first deadlines and events in one
    /// transaction, its opening in chat owed (`opening.rs`); `None` when
    /// its key already has an unresolved incident (another delivery or
    /// replica was first).
    pub(crate) async fn open_incident(
        &self,
        new: NewIncident,
        actor: &str,
    ) -> Result<Option<IncidentRow>, ActionError> {
        let now = self.now().timestamp_millis();
        let incident = IncidentRow {
            id: short_id("INC"),
            title: new.title,
            level: new.level,
            state: if new.acknowledged_by.is_some() {
                IncidentState::Acknowledged
            } else {
                IncidentState::Open
            },
            source: new.source.into(),
            dedup_key: new.dedup_key,
            channel: self.settings.channels.incidents.clone(),
            root_message: None,
            opened_ms: now,
            acked_ms: new.acknowledged_by.as_ref().map(|_| now),
            resolved_ms: None,
            updated_ms: now,
            context: serde_json::to_string(&new.context).ok(),
            severity: new.severity,
        };
        let acked = new.acknowledged_by.is_some();
        let body = if new.reason.is_empty() {
            incident.title.clone()
        } else {
            new.reason
        };
        let event = |who: &str, kind: &str, body: &str| IncidentEvent {
            id: uuid::Uuid::new_v4().to_string(),
            incident_id: incident.id.clone(),
            at_ms: now,
            actor: who.to_owned(),
            kind: kind.to_owned(),
            body: body.to_owned(),
            message_id: None,
        };
        let mut events = vec![event(actor, "opened", &body)];
        if let Some(who) = &new.acknowledged_by {
            events.push(event(who, "acknowledged", "on it as the requester"));
        }
        let first = FirstSteps {
            escalate_at_ms: if acked && self.settings.escalation.ack_stops_clock {
                None
            } else {
                self.escalation_deadline(incident.level, now)
            },
            remind_at_ms: if acked {
                None
            } else {
                self.reminder_deadline(incident.level, now)
            },
            events,
            // One that starts at a paged level pages at once, unless its
            // requester is already on it.
            pages: if acked {
                Vec::new()
            } else {
                self.pages_for(incident.level)
            },
        };
        if self.store.insert_incident(&incident, &first).await? == Opened::KeyTaken {
            return Ok(None);
        }
        Ok(Some(incident))
    }

    /// Posts the incident's root message and records it, unless another
    /// replica recorded one first. An incident whose root post failed gets
    /// it here when its alarm is taken in again.
    pub(crate) async fn post_root(
        &self,
        mut incident: IncidentRow,
    ) -> Result<IncidentRow, ActionError> {
        let posted = self
            .chat
            .post(&incident.channel, None, &self.root_message(&incident))
            .await?;
        if self
            .store
            .set_incident_root_once(&incident.id, &posted.id)
            .await?
        {
            incident.root_message = Some(posted.id);
            incident.channel = posted.channel;
            return Ok(incident);
        }
        Ok(self.store.incident(&incident.id).await?.unwrap_or(incident))
    }

    /// Stores an incident event that has no message of its own.
    pub(crate) async fn record_event(
        &self,
        incident: &IncidentRow,
        actor: &str,
        kind: &str,
        body: &str,
    ) -> Result<String, ActionError> {
        let event = IncidentEvent {
            id: uuid::Uuid::new_v4().to_string(),
            incident_id: incident.id.clone(),
            at_ms: self.now().timestamp_millis(),
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            body: body.to_owned(),
            message_id: None,
        };
        self.store.add_incident_event(&event).await?;
        Ok(event.id)
    }

    /// Stores an event, then posts it as a reply in the incident's thread.
    pub(crate) async fn thread(
        &self,
        incident: &IncidentRow,
        actor: &str,
        kind: &str,
        message: &Message,
    ) -> Result<MessageRef, ActionError> {
        let fresh;
        let incident = if incident.root_message.is_none() {
            // Its opening is owed work, perhaps done since this row was read.
            fresh = self.store.incident(&incident.id).await?;
            match &fresh {
                Some(row) if row.root_message.is_some() => row,
                _ => {
                    return Err(ActionError::Refused(format!(
                        "incident {} has no root message yet; its thread is written once it has",
                        incident.id
                    )));
                }
            }
        } else {
            incident
        };
        let event_id = self
            .record_event(incident, actor, kind, &message.fallback())
            .await?;
        let root = incident.root_message.as_ref().map(|ts| MessageRef {
            channel: incident.channel.clone(),
            id: ts.clone(),
        });
        let posted = self
            .chat
            .post(&incident.channel, root.as_ref(), message)
            .await?;
        self.store.set_event_message(&event_id, &posted.id).await?;
        Ok(posted)
    }
}
