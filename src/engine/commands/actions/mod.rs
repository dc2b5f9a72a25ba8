//! The runbook's actions, one file each. A read-only action returns a
//! reply; a changing one returns a proposal that runs only once confirmed.
//! Each runs with an [`ActionContext`]: the settings, the Cloud port, the
//! chart definitions, the clock and the store, never the services.

mod activities;
mod batch;
mod concurrency;
mod cost;
pub(super) mod drill;
mod policies;
mod policy;
mod provisioned;
mod raise;
mod rds_connections;
mod rds_limit;
mod rds_proxy;
mod restart;
mod rollback;
mod throttles;

pub use raise::raise_reserved_command;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::catalog::Invocation;
use crate::chart::ChartCatalog;
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::engine::request::{ActionError, Outcome};
use crate::store::Store;

/// What a command file's `action` names; each has one handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Throttles,
    Concurrency,
    Provisioned,
    Policy,
    Restart,
    RdsConnections,
    RdsProxy,
    Cost,
    CostRunaway,
    ScaleDown,
    Rollback,
    Policies,
    Activities,
    Undo,
    Incidents,
    Incident,
    Report,
    Drill,
    Silence,
    Silences,
    Unsilence,
}

impl Action {
    pub const ALL: [Action; 21] = [
        Action::Throttles,
        Action::Concurrency,
        Action::Provisioned,
        Action::Policy,
        Action::Restart,
        Action::RdsConnections,
        Action::RdsProxy,
        Action::Cost,
        Action::CostRunaway,
        Action::ScaleDown,
        Action::Rollback,
        Action::Policies,
        Action::Activities,
        Action::Undo,
        Action::Incidents,
        Action::Incident,
        Action::Report,
        Action::Drill,
        Action::Silence,
        Action::Silences,
        Action::Unsilence,
    ];

    /// The name command files use in `action`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Throttles => "throttles",
            Action::Concurrency => "concurrency",
            Action::Provisioned => "provisioned",
            Action::Policy => "policy",
            Action::Restart => "restart",
            Action::RdsConnections => "rds_connections",
            Action::RdsProxy => "rds_proxy",
            Action::Cost => "cost",
            Action::CostRunaway => "cost_runaway",
            Action::ScaleDown => "scale_down",
            Action::Rollback => "rollback",
            Action::Policies => "policies",
            Action::Activities => "activities",
            Action::Undo => "undo",
            Action::Incidents => "incidents",
            Action::Incident => "incident",
            Action::Report => "report",
            Action::Drill => "drill",
            Action::Silence => "silence",
            Action::Silences => "silences",
            Action::Unsilence => "unsilence",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Every name, for validating command files.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|a| a.name()).collect()
    }
}

/// What an action may use.
pub struct ActionContext<'a> {
    pub settings: &'a Settings,
    pub cloud: &'a dyn Cloud,
    pub charts: &'a ChartCatalog,
    pub clock: &'a dyn Clock,
    pub tz: Tz,
    pub region: &'a str,
    /// For the snapshots a rollback reads.
    pub store: &'a Store,
}

impl ActionContext<'_> {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// A `<n|clear>` argument: `None` for `clear`.
fn count_or_clear(inv: &Invocation, name: &str) -> Result<Option<i32>, ActionError> {
    use crate::catalog::ArgValue;
    match inv.args.get(name) {
        Some(ArgValue::Word(w)) if w == "clear" => Ok(None),
        Some(ArgValue::Integer(n)) => i32::try_from(*n)
            .map(Some)
            .map_err(|_| ActionError::Refused(format!("{n} is not a concurrency AWS accepts"))),
        _ => Err(ActionError::Spec(format!(
            "a `{name}` argument (a number or `clear`)"
        ))),
    }
}

/// Runs one of the actions that need only the context; the command
/// service handles the others (undo, incidents, reports, drills).
pub(crate) async fn run(
    action: Action,
    cx: &ActionContext<'_>,
    inv: &Invocation,
) -> Result<Outcome, ActionError> {
    match action {
        Action::Throttles => throttles::run(cx, inv).await,
        Action::Concurrency => concurrency::run(cx, inv).await,
        Action::Provisioned => provisioned::run(cx, inv).await,
        Action::Restart => restart::run(cx, inv).await,
        Action::Policy => policy::run(cx, inv).await,
        Action::RdsConnections => rds_connections::run(cx, inv).await,
        Action::RdsProxy => rds_proxy::run(cx, inv).await,
        Action::Cost => cost::run(cx, inv).await,
        Action::CostRunaway => batch::cost_runaway(cx, inv).await,
        Action::ScaleDown => batch::scale_down(cx, inv).await,
        Action::Rollback => rollback::run(cx, inv).await,
        Action::Policies => policies::run(cx, inv).await,
        Action::Activities => activities::run(cx, inv).await,
        Action::Undo
        | Action::Incidents
        | Action::Incident
        | Action::Report
        | Action::Drill
        | Action::Silence
        | Action::Silences
        | Action::Unsilence => Err(ActionError::Spec(format!(
            "`{}` is run by its service, not here",
            action.name()
        ))),
    }
}
