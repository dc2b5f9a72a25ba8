//! The command service: a parsed command becomes an immediate ack and, for
//! real work, a background job that runs its action and posts the outcome;
//! a click becomes the action its button names.

pub mod actions;
mod help;
mod report;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::task::TaskTracker;

use self::actions::{Action, ActionContext};
use super::access::{self, Need};
use super::incidents::{IncidentService, IncidentVerb};
use super::plans::PlanService;
use super::request::{Ack, ActionError, ButtonEvent, CommandRequest, Outcome, Reply, Visibility};
use crate::catalog::{Catalog, Invocation, Parsed};
use crate::chart::ChartCatalog;
use crate::chat::{ButtonAction, Chat, ChatError, Message, Tone};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::drills::Drills;
use crate::reports::ReportService;
use crate::store::{AuditEntry, AuditId, Store};

pub struct CommandService {
    pub(super) settings: Arc<Settings>,
    pub(super) catalog: Arc<Catalog>,
    pub(super) charts: Arc<ChartCatalog>,
    pub(super) cloud: Arc<dyn Cloud>,
    pub(super) drills: Option<Arc<dyn Drills>>,
    pub(super) chat: Arc<dyn Chat>,
    pub(super) store: Store,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) tz: Tz,
    pub(super) region: String,
    pub(super) tasks: TaskTracker,
    pub(super) plans: Arc<PlanService>,
    pub(super) incidents: Arc<IncidentService>,
    pub(super) reports: Arc<ReportService>,
}

impl CommandService {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Answers at once; real work continues in the background and reports
    /// into the channel. Nothing reaches AWS for input that does not parse.
    pub async fn accept(self: &Arc<Self>, req: CommandRequest) -> Ack {
        let id = AuditId::new();
        let parsed = self.catalog.parse(&req.text);
        let (command, outcome, detail, ack) = match parsed {
            Parsed::Help(topic) => (
                "help".to_owned(),
                "answered",
                String::new(),
                Ack {
                    job: false,
                    visibility: Visibility::Ephemeral,
                    message: match topic {
                        Some(spec) => help::command(&spec),
                        None => help::catalog(&self.catalog),
                    },
                },
            ),
            Parsed::Error(e) => (
                crate::domain::truncate(req.text.trim(), 200),
                "rejected",
                e.to_string(),
                Ack {
                    job: false,
                    visibility: Visibility::Ephemeral,
                    message: Message {
                        tone: Tone::Warning,
                        text: format!("{} {e}", Tone::Warning.emoji()).into(),
                        footer: Some("`/scale help` lists every command.".into()),
                        ..Default::default()
                    },
                },
            ),
            Parsed::Run(inv) => self.start(inv, &req, &id).await,
        };
        let entry = AuditEntry {
            id: id.0,
            at_ms: self.now().timestamp_millis(),
            platform: req.via.clone(),
            actor: req.user.clone(),
            channel: req.channel.clone(),
            command,
            outcome: outcome.into(),
            detail,
            // Help, a parse error or a refusal has no job behind it: it is
            // over when it is answered.
            finished_ms: (!ack.job).then(|| self.now().timestamp_millis()),
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, "audit write failed");
        }
        ack
    }

    /// A command that parsed: refused (only the requester sees why), or
    /// its job started. As (audit command, outcome, detail, ack).
    async fn start(
        self: &Arc<Self>,
        inv: Invocation,
        req: &CommandRequest,
        id: &AuditId,
    ) -> (String, &'static str, String, Ack) {
        let command = inv.canonical();
        if let Some((detail, text)) = self.refusal(&inv, &req.user).await {
            let ack = Ack {
                job: false,
                visibility: Visibility::Ephemeral,
                message: Message {
                    tone: Tone::Warning,
                    text: text.into(),
                    ..Default::default()
                },
            };
            return (command, "refused", detail, ack);
        }
        let ack = Ack {
            job: true,
            visibility: Visibility::Ephemeral,
            message: Message::text(format!("⏳ Running `/scale {command}`…")),
        };
        let me = self.clone();
        let (req, id) = (req.clone(), id.clone());
        self.tasks.spawn(async move { me.run(inv, req, id).await });
        (command, "accepted", String::new(), ack)
    }

    /// Why `user` may not run `inv`, as (audit detail, what they are
    /// told); `None` when they may. Acting on an incident needs the
    /// incident-control roles, anything else its file's `role` or the
    /// reading roles. Group lookups get [`access::LOOKUP_DEADLINE`], so
    /// the ack stays within the platforms' window.
    async fn refusal(&self, inv: &Invocation, user: &str) -> Option<(String, String)> {
        let permissions = &self.settings.permissions;
        let action = Action::parse(&inv.spec.action);
        let acts_on_incident = action == Some(Action::Incident) && IncidentService::controls(inv);
        let need = if acts_on_incident {
            Need::incident_control(permissions)
        } else if matches!(action, Some(Action::Silence | Action::Unsilence)) {
            // Silencing decides who gets paged: the incident controllers'.
            Need {
                what: "silence or unsilence alarms".into(),
                ..Need::incident_control(permissions)
            }
        } else {
            Need::command(permissions, inv)?
        };
        let check = need.met_by(&self.settings, self.chat.as_ref(), user);
        match tokio::time::timeout(access::LOOKUP_DEADLINE, check).await {
            Ok(true) => None,
            Ok(false) => Some((need.detail(), need.refusal())),
            Err(_) => Some((
                "role lookup timed out".into(),
                "🚫 Your roles could not be checked in time; nothing was done. Please try again."
                    .into(),
            )),
        }
    }

    async fn run(self: Arc<Self>, inv: Invocation, req: CommandRequest, id: AuditId) {
        use tracing::Instrument;
        // A span entered with `enter()` across an await corrupts the
        // subscriber's per-thread span stack (a replica panicked on it in
        // the chaos test); `instrument` enters it at each poll instead.
        let span = tracing::info_span!("command", command = %inv.canonical(), user = %req.user);
        self.run_in_span(inv, req, id).instrument(span).await;
    }

    async fn run_in_span(self: Arc<Self>, inv: Invocation, req: CommandRequest, id: AuditId) {
        let result = self.run_action(&inv, &req).await;
        let (outcome, detail) = match result {
            Ok(Outcome::Reply(mut reply)) => {
                reply.message.answers = Some(req.user.clone());
                match self.deliver(&req.channel, reply).await {
                    Ok(()) => ("ok", String::new()),
                    Err(e) => ("chat_failed", e.to_string()),
                }
            }
            Ok(Outcome::Posted) => ("ok", String::new()),
            Ok(Outcome::Proposal(proposal)) => {
                match self.plans.propose(&req, &inv, proposal, None).await {
                    Ok(plan_id) => ("planned", plan_id),
                    Err(e) => self.report_failure(&req, &inv, e).await,
                }
            }
            Err(e) => self.report_failure(&req, &inv, e).await,
        };
        if let Err(e) = self.store.audit_finish(&id, outcome, &detail).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }

    /// Runs the action a command file names, with what that action needs.
    async fn run_action(
        &self,
        inv: &Invocation,
        req: &CommandRequest,
    ) -> Result<Outcome, ActionError> {
        let action = Action::parse(&inv.spec.action)
            .ok_or_else(|| ActionError::Spec(format!("no action `{}`", inv.spec.action)))?;
        let cx = ActionContext {
            settings: &self.settings,
            cloud: self.cloud.as_ref(),
            charts: &self.charts,
            clock: self.clock.as_ref(),
            tz: self.tz,
            region: &self.region,
            store: &self.store,
        };
        match action {
            Action::Undo => self.plans.undo(inv, req).await,
            Action::Incidents => self.incidents.list().await,
            Action::Incident => self.incidents.command(inv, req).await,
            Action::Report => report::run(&self.reports, inv, req).await,
            Action::Drill => actions::drill::run(&cx, self.drills.as_deref(), inv).await,
            Action::Silence => self.incidents.silence(inv, req).await,
            Action::Silences => self.incidents.silences().await,
            Action::Unsilence => self.incidents.unsilence(inv, req).await,
            other => actions::run(other, &cx, inv).await,
        }
    }

    async fn report_failure(
        &self,
        req: &CommandRequest,
        inv: &Invocation,
        e: ActionError,
    ) -> (&'static str, String) {
        tracing::info!(error = %e, "command failed");
        let (tone, outcome) = match e {
            ActionError::Refused(_) => (Tone::Warning, "refused"),
            _ => (Tone::Bad, "failed"),
        };
        let message = Message {
            title: Some(format!("Could not run /scale {}", inv.canonical())),
            tone,
            text: capitalise(&e.to_string()).into(),
            answers: Some(req.user.clone()),
            ..Default::default()
        };
        match self.chat.post(&req.channel, None, &message).await {
            Ok(_) => (outcome, e.to_string()),
            Err(chat) => (
                outcome,
                format!("{e}; and the error could not be posted: {chat}"),
            ),
        }
    }

    async fn deliver(&self, channel: &str, reply: Reply) -> Result<(), ChatError> {
        self.chat.post(channel, None, &reply.message).await?;
        for image in &reply.images {
            self.chat.upload_png(channel, None, image).await?;
        }
        Ok(())
    }

    /// A button click; runs after the ingress has acknowledged it.
    pub async fn on_button(self: &Arc<Self>, ev: ButtonEvent) {
        let result = match &ev.action {
            ButtonAction::ConfirmPlan { plan } => self.plans.confirm_click(&ev, plan).await,
            ButtonAction::CancelPlan { plan } => self.plans.cancel_click(&ev, plan).await,
            ButtonAction::Run { command, incident } => {
                self.run_button(&ev, command, incident.clone()).await;
                Ok(())
            }
            ButtonAction::Acknowledge { incident } => {
                self.incident_click(&ev, IncidentVerb::Acknowledge, incident)
                    .await
            }
            ButtonAction::Escalate { incident } => {
                self.incident_click(&ev, IncidentVerb::Escalate, incident)
                    .await
            }
            ButtonAction::Resolve { incident } => {
                self.incident_click(&ev, IncidentVerb::Resolve, incident)
                    .await
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, action = ev.action.action_id(), "button handling failed");
            self.plans
                .tell(&ev, format!("⚠️ That did not work: {e}"))
                .await;
        }
    }

    /// An incident's Acknowledge, Escalate or Resolve button: refused
    /// (audited, told to the clicker alone, nothing else happens) unless
    /// the clicker may control incidents.
    async fn incident_click(
        &self,
        ev: &ButtonEvent,
        verb: IncidentVerb,
        incident: &str,
    ) -> Result<(), ActionError> {
        let need = Need::incident_control(&self.settings.permissions);
        if !need
            .met_by(&self.settings, self.chat.as_ref(), &ev.user)
            .await
        {
            let what = format!("{} {incident}", verb.word());
            self.audit_refused_click(ev, what, need.detail()).await;
            self.plans.tell(ev, need.refusal()).await;
            return Ok(());
        }
        if let Some(answer) = self.incidents.act(&ev.user, verb, incident).await? {
            self.plans.tell(ev, answer).await;
        }
        Ok(())
    }

    async fn audit_refused_click(&self, ev: &ButtonEvent, what: String, detail: String) {
        let now = self.now().timestamp_millis();
        let entry = AuditEntry {
            id: AuditId::new().0,
            at_ms: now,
            platform: ev.via.clone(),
            actor: ev.user.clone(),
            channel: ev.channel.clone(),
            command: what,
            outcome: "refused".into(),
            detail,
            finished_ms: Some(now),
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }

    /// A button that runs a command (e.g. "Raise reserved concurrency"),
    /// as if the clicker had typed it.
    async fn run_button(self: &Arc<Self>, ev: &ButtonEvent, text: &str, incident: Option<String>) {
        let ack = self
            .accept(CommandRequest {
                via: ev.via.clone(),
                user: ev.user.clone(),
                channel: ev.channel.clone(),
                text: text.to_owned(),
                incident,
            })
            .await;
        if let Err(e) = self
            .chat
            .ephemeral(&ev.channel, &ev.user, &ack.message)
            .await
        {
            tracing::warn!(error = %e, "ephemeral reply failed");
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
