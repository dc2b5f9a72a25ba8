//! `/scale drill <throttling|rds|cost|storm>`: starts a game-day scenario
//! on the simulated account of `scalebot demo`. Against a real AWS account
//! there are no drills: it refuses and nothing changes.

use crate::catalog::Invocation;
use crate::chat::{Message, Tone};
use crate::drills::{Drill, Drills};
use crate::engine::request::{ActionError, Outcome, Reply};

use super::ActionContext;

pub async fn run(
    cx: &ActionContext<'_>,
    drills: Option<&dyn Drills>,
    inv: &Invocation,
) -> Result<Outcome, ActionError> {
    let name = inv
        .word("scenario")
        .ok_or_else(|| ActionError::Spec("a `scenario` argument".into()))?;
    let drill = Drill::parse(name).ok_or_else(|| {
        ActionError::Refused(format!(
            "there is no drill `{name}`; drills: throttling, rds, cost, storm"
        ))
    })?;
    let Some(drills) = drills else {
        return Err(ActionError::Refused(format!(
            "drills run only on the simulated account of `scalebot demo`; this bot is connected to a real AWS account, so `{}` was not started and nothing was changed",
            drill.as_str()
        )));
    };
    drills
        .start(drill)
        .await
        .map_err(|e| ActionError::Refused(e.to_string()))?;
    let next = match drill {
        Drill::Throttling => "`/scale throttles persona-api`, then raise its reserved concurrency",
        Drill::Rds => "`/scale rds connections`, then `/scale rds proxy`",
        Drill::Cost => "`/scale cost 7`, then `/scale cost-runaway` or `/scale provisioned`",
        Drill::Storm => "`/scale incidents`, then acknowledge and work through each incident",
    };
    let incidents = &cx.settings.channels.incidents;
    let message = Message {
        title: Some(format!("Drill started: {}", drill.as_str())),
        tone: Tone::Warning,
        text: format!(
            "{}\nAlarms arrive in <#{incidents}> within a few simulated minutes and escalate on the demo's clock.",
            drill.describe()
        ).into(),
        footer: Some(format!(
            "Simulated account · started {}",
            crate::format::stamp(cx.now(), cx.tz)
        ).into()),
        ..Default::default()
    }
    .field("Try next", next);
    Ok(Outcome::Reply(Reply {
        message,
        images: Vec::new(),
    }))
}
