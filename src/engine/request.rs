//! What goes into the services and what comes out: a verified command or
//! click, the ack the ingress answers with, and what an action produces.

use crate::chart::ChartError;
use crate::chat::{ButtonAction, ChatError, Image, Message};
use crate::cloud::CloudError;
use crate::reports::ReportError;
use crate::reports::snapshot::SnapshotError;
use crate::store::StoreError;

use super::plans::change::Change;

/// A slash command as it arrived, verified.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    /// Which adapter it came through (`slack`, `discord`, `web`): recorded
    /// in the audit log and on plans, never acted on.
    pub via: String,
    pub user: String,
    pub channel: String,
    pub text: String,
    /// Set when the command comes from an incident's button or thread, so
    /// that its plan joins that incident.
    pub incident: Option<String>,
}

/// A button click, verified by the ingress.
#[derive(Debug, Clone)]
pub struct ButtonEvent {
    /// As in [`CommandRequest::via`].
    pub via: String,
    pub user: String,
    pub channel: String,
    pub action: ButtonAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Only the person who typed the command sees it.
    Ephemeral,
    InChannel,
}

/// What the ingress answers within the platform's ack window.
#[derive(Debug, Clone)]
pub struct Ack {
    pub visibility: Visibility,
    pub message: Message,
    /// A background job will post the outcome in the channel (Discord then
    /// lets that post replace this answer).
    pub job: bool,
}

/// What a read-only action produces.
#[derive(Debug, Clone)]
pub struct Reply {
    pub message: Message,
    pub images: Vec<Image>,
}

/// What a changing action proposes; it runs only once confirmed.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub changes: Vec<Change>,
    /// Consequences worth reading before confirming (account concurrency
    /// left, cost per hour, functions affected).
    pub notes: Vec<String>,
    /// The executed plan this one reverts.
    pub undo_of: Option<String>,
    /// The incident the plan belongs to, when the action knows it.
    pub incident: Option<String>,
}

impl Proposal {
    pub fn new(changes: Vec<Change>, notes: Vec<String>) -> Self {
        Self {
            changes,
            notes,
            undo_of: None,
            incident: None,
        }
    }
}

pub enum Outcome {
    Reply(Reply),
    Proposal(Proposal),
    /// The action posted its answer itself (a report with charts in its
    /// thread).
    Posted,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("the command file is missing what the action needs: {0}")]
    Spec(String),
    /// A guardrail or a runbook rule says no; the text names the limit.
    #[error("refused: {0}")]
    Refused(String),
}
