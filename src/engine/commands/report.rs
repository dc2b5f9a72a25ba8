//! `/scale health`, `/scale review`, `/scale capacity`: the scheduled
//! reports on demand, posted to the channel the command was typed in (the
//! message there, its charts in its thread). Which report a command posts
//! is its file's `params.report` (`daily`, `weekly` or `monthly`).

use crate::catalog::Invocation;
use crate::engine::request::{ActionError, CommandRequest, Outcome};
use crate::reports::{ReportKind, ReportService};

pub(super) async fn run(
    reports: &ReportService,
    inv: &Invocation,
    req: &CommandRequest,
) -> Result<Outcome, ActionError> {
    let key = inv
        .spec
        .params
        .get("report")
        .and_then(toml::Value::as_str)
        .unwrap_or_default();
    let kind = ReportKind::parse(key).ok_or_else(|| {
        ActionError::Spec(format!(
            "a `params.report` of daily, weekly or monthly, not `{key}`"
        ))
    })?;
    reports
        .post_report(kind, &req.channel, Some(&req.user))
        .await?;
    Ok(Outcome::Posted)
}
