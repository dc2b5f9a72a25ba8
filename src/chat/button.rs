//! What a button does, as one type that every adapter draws and parses.
//!
//! A button is sent to a chat platform as two strings (Slack's `action_id`
//! and `value`, Discord's `custom_id`, the web chat's JSON) and comes back
//! the same way when clicked. [`ButtonAction::wire`] and
//! [`ButtonAction::parse`] are the only places those strings are made and
//! read, so a button that is drawn is a button that is accepted.

/// Separates a "run" button's command from the incident it belongs to.
const INCIDENT_SEP: &str = " @incident ";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ButtonAction {
    /// Approve a stored plan.
    ConfirmPlan {
        plan: String,
    },
    /// Cancel a stored plan.
    CancelPlan {
        plan: String,
    },
    /// Run a command as if the clicker had typed it; a plan it proposes
    /// joins `incident`.
    Run {
        command: String,
        incident: Option<String>,
    },
    Acknowledge {
        incident: String,
    },
    Escalate {
        incident: String,
    },
    Resolve {
        incident: String,
    },
}

/// The `action_id`s in use, one per variant.
pub const ACTION_IDS: [&str; 6] = [
    "plan.confirm",
    "plan.cancel",
    "run",
    "incident.ack",
    "incident.escalate",
    "incident.resolve",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ButtonError {
    #[error("unknown button action `{0}`")]
    UnknownAction(String),
    #[error("button `{0}` carries no value")]
    MissingValue(&'static str),
    #[error("button `{action}` value is too long ({len} characters)")]
    TooLong { action: &'static str, len: usize },
}

/// Longer values than this are not ours: plan and incident ids are short,
/// commands fit on a line.
const VALUE_MAX: usize = 500;

impl ButtonAction {
    pub fn action_id(&self) -> &'static str {
        match self {
            ButtonAction::ConfirmPlan { .. } => ACTION_IDS[0],
            ButtonAction::CancelPlan { .. } => ACTION_IDS[1],
            ButtonAction::Run { .. } => ACTION_IDS[2],
            ButtonAction::Acknowledge { .. } => ACTION_IDS[3],
            ButtonAction::Escalate { .. } => ACTION_IDS[4],
            ButtonAction::Resolve { .. } => ACTION_IDS[5],
        }
    }

    pub fn value(&self) -> String {
        match self {
            ButtonAction::ConfirmPlan { plan } | ButtonAction::CancelPlan { plan } => plan.clone(),
            ButtonAction::Run { command, incident } => match incident {
                Some(i) => format!("{command}{INCIDENT_SEP}{i}"),
                None => command.clone(),
            },
            ButtonAction::Acknowledge { incident }
            | ButtonAction::Escalate { incident }
            | ButtonAction::Resolve { incident } => incident.clone(),
        }
    }

    /// `(action_id, value)` as sent to the platform.
    pub fn wire(&self) -> (&'static str, String) {
        (self.action_id(), self.value())
    }

    /// The inverse of [`ButtonAction::wire`], for what a platform sends back.
    pub fn parse(action_id: &str, value: &str) -> Result<Self, ButtonError> {
        let Some(&action) = ACTION_IDS.iter().find(|a| **a == action_id) else {
            return Err(ButtonError::UnknownAction(clip(action_id)));
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(ButtonError::MissingValue(action));
        }
        if value.chars().count() > VALUE_MAX {
            return Err(ButtonError::TooLong {
                action,
                len: value.chars().count(),
            });
        }
        let v = value.to_owned();
        Ok(match action {
            "plan.confirm" => ButtonAction::ConfirmPlan { plan: v },
            "plan.cancel" => ButtonAction::CancelPlan { plan: v },
            "incident.ack" => ButtonAction::Acknowledge { incident: v },
            "incident.escalate" => ButtonAction::Escalate { incident: v },
            "incident.resolve" => ButtonAction::Resolve { incident: v },
            _ => match value.split_once(INCIDENT_SEP) {
                Some((command, incident)) => ButtonAction::Run {
                    command: command.to_owned(),
                    incident: Some(incident.to_owned()),
                },
                None => ButtonAction::Run {
                    command: v,
                    incident: None,
                },
            },
        })
    }

    /// A short description for the audit log.
    pub fn describe(&self) -> String {
        format!("{} {}", self.action_id(), self.value())
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn every_action() -> Vec<ButtonAction> {
        vec![
            ButtonAction::ConfirmPlan { plan: "P-1".into() },
            ButtonAction::CancelPlan { plan: "P-1".into() },
            ButtonAction::Run {
                command: "throttles persona-api".into(),
                incident: None,
            },
            ButtonAction::Run {
                command: "concurrency persona-api 120".into(),
                incident: Some("I-7".into()),
            },
            ButtonAction::Acknowledge {
                incident: "I-7".into(),
            },
            ButtonAction::Escalate {
                incident: "I-7".into(),
            },
            ButtonAction::Resolve {
                incident: "I-7".into(),
            },
        ]
    }

    #[test]
    fn every_action_round_trips_through_its_wire_form() {
        let actions = every_action();
        for a in &actions {
            let (id, value) = a.wire();
            assert_eq!(ButtonAction::parse(id, &value).as_ref(), Ok(a), "{id}");
        }
        // Every action id is drawn by some variant.
        for id in ACTION_IDS {
            assert!(actions.iter().any(|a| a.action_id() == id), "{id}");
        }
    }

    #[test]
    fn unknown_empty_and_oversized_values_are_refused() {
        assert_eq!(
            ButtonAction::parse("plan.explode", "P-1"),
            Err(ButtonError::UnknownAction("plan.explode".into()))
        );
        assert_eq!(
            ButtonAction::parse("incident.ack", "  "),
            Err(ButtonError::MissingValue("incident.ack"))
        );
        assert!(matches!(
            ButtonAction::parse("run", &"x".repeat(501)),
            Err(ButtonError::TooLong { .. })
        ));
    }
}
