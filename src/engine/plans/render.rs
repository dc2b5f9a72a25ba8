//! How a plan looks: its message by state, redrawn in place.

use std::time::Duration;

use super::change::Change;
use super::{PlanService, View, doc_of, outcome_tone};
use crate::chat::{Button, ButtonAction, ButtonStyle, Confirm, Message, MessageRef, Text, Tone};
use crate::domain::state::PlanState;
use crate::store::PlanRow;

impl PlanService {
    pub(super) fn plan_message(&self, plan: &PlanRow, view: View<'_>) -> Message {
        let doc = doc_of(plan);
        let expires = chrono::DateTime::from_timestamp_millis(plan.expires_ms).unwrap_or_default();
        let who = if plan.approvals_needed >= 2 {
            format!(
                "{} people in role `{}`, not the requester",
                plan.approvals_needed, plan.role
            )
        } else {
            format!("someone in role `{}`", plan.role)
        };
        let (tone, status) = match &view {
            View::Pending(approved) => {
                let mut s = Text::from("Requested by ")
                    .user(&plan.requester)
                    .markup(format!(
                        ". Needs confirmation by {who}. Expires at {}.",
                        crate::format::time_of_day(expires, self.tz)
                    ));
                if !approved.is_empty() {
                    s = s
                        .markup(format!(
                            "\nApproved so far ({} of {}): ",
                            approved.len(),
                            plan.approvals_needed
                        ))
                        .users(approved.iter(), ", ");
                }
                (Tone::Warning, s)
            }
            View::Executed(state) => (
                outcome_tone(*state),
                Text::from("Requested by ")
                    .user(&plan.requester)
                    .markup(match state {
                        PlanState::Done => ". ✅ Executed; the results are in this thread.",
                        PlanState::Partial => {
                            ". ⚠️ Partly executed; the results are in this thread."
                        }
                        _ => ". ❌ Failed; the errors are in this thread.",
                    }),
            ),
            View::Closed(s) => (Tone::Neutral, s.clone()),
        };
        let mut text = status;
        if plan.dry_run {
            text.push_markup("\n*DRY RUN*: nothing will be changed in AWS.");
        }
        for note in &doc.notes {
            text.push_markup(format!("\n• {note}"));
        }
        let mut message = Message {
            title: Some(format!("Plan {}: /scale {}", plan.id, plan.command)),
            tone,
            text,
            footer: plan
                .undo_of
                .as_ref()
                .map(|u| Text::from(format!("Undoes plan {u}"))),
            ..Default::default()
        };
        for change in &doc.changes {
            let (what, from, to) = change.describe();
            message = message.field(what, format!("{from} → {to}"));
        }
        if matches!(view, View::Pending(_)) {
            message.buttons = buttons(plan, &doc.changes);
        }
        message
    }

    pub(super) async fn redraw(&self, plan: &PlanRow, view: View<'_>) {
        // A click can arrive between posting the plan and storing where it
        // was posted; wait briefly for the handle rather than skip the update.
        let mut plan = plan.clone();
        for _ in 0..20 {
            if plan.message_id.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.store.plan(&plan.id).await {
                Ok(Some(p)) => {
                    plan.message_channel = p.message_channel;
                    plan.message_id = p.message_id;
                }
                _ => break,
            }
        }
        let plan = &plan;
        if let (Some(channel), Some(ts)) = (&plan.message_channel, &plan.message_id) {
            let at = MessageRef {
                channel: channel.clone(),
                id: ts.clone(),
            };
            if let Err(e) = self.chat.update(&at, &self.plan_message(plan, view)).await {
                tracing::warn!(plan = %plan.id, error = %e, "plan message not updated");
            }
        }
    }
}

/// Confirm (with the changes in its dialog; red and asking twice on
/// Discord when destructive) and Cancel.
fn buttons(plan: &PlanRow, changes: &[Change]) -> Vec<Button> {
    let summary: Vec<String> = changes
        .iter()
        .map(|c| {
            let (what, from, to) = c.describe();
            format!("{what}: {from} → {to}")
        })
        .collect();
    let (label, style) = if plan.destructive {
        ("Confirm (destructive)", ButtonStyle::Danger)
    } else {
        ("Confirm", ButtonStyle::Primary)
    };
    vec![
        Button {
            label: label.into(),
            action: ButtonAction::ConfirmPlan {
                plan: plan.id.clone(),
            },
            style,
            confirm: Some(Confirm {
                title: format!("Run plan {}?", plan.id),
                text: summary.join("\n"),
                confirm: "Run it".into(),
                deny: "Not yet".into(),
            }),
        },
        Button {
            label: "Cancel".into(),
            action: ButtonAction::CancelPlan {
                plan: plan.id.clone(),
            },
            style: ButtonStyle::Default,
            confirm: None,
        },
    ]
}
