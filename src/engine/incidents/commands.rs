//! `/scale incidents` and `/scale incident <id> ack|resolve|escalate|note|severity|status|timeline`.
//!
//! Replaces the runbook's *Escalation Procedures* by hand and its "document
//! incident in post-mortem" follow-up: the timeline is exported from the
//! stored events as a Markdown post-mortem (every event with time and
//! actor, levels reached, plans confirmed and their results, time to
//! acknowledge and to resolve).

use super::{IncidentService, IncidentVerb, level_name};
use crate::catalog::Invocation;
use crate::chat::{Attachment, Message, MessageRef, Text, Tone};
use crate::engine::request::{ActionError, CommandRequest, Outcome, Reply};
use crate::format::stamp;
use crate::store::IncidentRow;

fn minutes(ms: i64) -> String {
    let m = ms / 60_000;
    if m < 60 {
        format!("{m} min")
    } else {
        format!("{} h {} min", m / 60, m % 60)
    }
}

pub(crate) async fn list(incidents: &IncidentService) -> Result<Outcome, ActionError> {
    let open = incidents.store.open_incidents().await?;
    let now = incidents.now().timestamp_millis();
    let text = if open.is_empty() {
        "No open incidents.".to_owned()
    } else {
        open.iter()
            .map(|i| {
                format!(
                    "• `{}` {} · {}{} · {} · open {}",
                    i.id,
                    i.title,
                    i.severity.map(|s| format!("{s} · ")).unwrap_or_default(),
                    level_name(i.level),
                    i.state,
                    minutes(now - i.opened_ms)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(Outcome::Reply(Reply {
        message: Message {
            title: Some(format!("Open incidents: {}", open.len())),
            text: text.into(),
            footer: Some(
                "`/scale incident <id> status|ack|escalate|note|severity|resolve|timeline`".into(),
            ),
            ..Default::default()
        },
        images: Vec::new(),
    }))
}

const VERBS: [&str; 6] = ["status", "ack", "escalate", "keep", "resolve", "timeline"];

/// Verbs that take words after them, so never the first word in an
/// incident's own channel (where the verb argument would take those words).
const WITH_TEXT: [&str; 2] = ["note", "severity"];

/// The verbs that only look at an incident; every other word acts on it.
const VIEWING: [&str; 2] = ["status", "timeline"];

/// Whether the invocation acts on an incident. Decided from the words
/// alone, before anything is read: the first word counts as the verb when
/// it is a verb (`/scale incident ack` in an incident's own channel), and
/// the verb argument always does, so that no reading of the words that
/// [`run`] might take lets an action through as viewing.
pub(super) fn controls(inv: &Invocation) -> bool {
    let acts = |w: &str| !VIEWING.contains(&w.to_lowercase().as_str());
    let first = inv.word("id").unwrap_or_default().to_lowercase();
    let first_is_verb = VERBS.contains(&first.as_str()) || WITH_TEXT.contains(&first.as_str());
    (first_is_verb && acts(&first)) || acts(inv.word("verb").unwrap_or("status"))
}

pub(crate) async fn run(
    incidents: &IncidentService,
    inv: &Invocation,
    req: &CommandRequest,
) -> Result<Outcome, ActionError> {
    let first = inv
        .word("id")
        .ok_or_else(|| ActionError::Spec("an `id` argument".into()))?;
    // In an incident's own channel the id can be left out: `/scale incident ack`.
    let (id, verb) = match incidents.store.incident_by_channel(&req.channel).await? {
        Some(here) if VERBS.contains(&first.to_lowercase().as_str()) => {
            (here.id, first.to_lowercase())
        }
        _ => (
            first.to_uppercase(),
            inv.word("verb").unwrap_or("status").to_owned(),
        ),
    };
    let Some(incident) = incidents.store.incident(&id).await? else {
        return Err(ActionError::Refused(format!("there is no incident `{id}`")));
    };
    let text = match verb.as_str() {
        "ack" | "resolve" => {
            let action = if verb == "ack" {
                IncidentVerb::Acknowledge
            } else {
                IncidentVerb::Resolve
            };
            match incidents.act(&req.user, action, &id).await? {
                Some(answer) => answer,
                None => format!("Incident `{id}`: {verb} recorded in its thread."),
            }
        }
        "escalate" => match incidents
            .act(&req.user, IncidentVerb::Escalate, &id)
            .await?
        {
            Some(answer) => answer,
            None => format!(
                "Incident `{id}` escalated to {}.",
                level_name(incident.level + 1)
            ),
        },
        "keep" => {
            if incidents.keep_open(&incident, &req.user).await? {
                format!("Incident `{id}` stays open until someone resolves it.")
            } else {
                format!(
                    "Incident `{id}` is {}; only a recovered incident resolves itself.",
                    incident.state
                )
            }
        }
        "note" => note(incidents, inv, req, &incident).await?,
        "severity" => {
            let words = inv.args.get("text").map(|t| t.to_string());
            incidents
                .change_severity(&incident, &req.user, words.as_deref())
                .await?
        }
        "timeline" => attach_timeline(incidents, &incident).await?,
        _ => status(incidents, &incident),
    };
    Ok(Outcome::Reply(Reply {
        message: Message {
            tone: Tone::Neutral,
            text: text.into(),
            ..Default::default()
        },
        images: Vec::new(),
    }))
}

/// `note <text>`: the user's words in the thread, verbatim, so they can
/// mention nobody and format nothing.
async fn note(
    incidents: &IncidentService,
    inv: &Invocation,
    req: &CommandRequest,
    incident: &IncidentRow,
) -> Result<String, ActionError> {
    let note = inv
        .args
        .get("text")
        .map(|t| t.to_string())
        .unwrap_or_default();
    if note.is_empty() {
        return Err(ActionError::Refused(
            "a note needs text: `/scale incident <id> note <text>`".into(),
        ));
    }
    let text = Text::from("📝 ")
        .user(&req.user)
        .markup(": ")
        .verbatim(note);
    incidents
        .thread(incident, &req.user, "note", &Message::text(text))
        .await?;
    Ok(format!("Note added to incident `{}`.", incident.id))
}

/// `timeline`: the post-mortem as a Markdown file in the thread.
async fn attach_timeline(
    incidents: &IncidentService,
    incident: &IncidentRow,
) -> Result<String, ActionError> {
    let id = &incident.id;
    let markdown = timeline(incidents, incident).await?;
    let root = incident.root_message.as_ref().map(|ts| MessageRef {
        channel: incident.channel.clone(),
        id: ts.clone(),
    });
    let file = Attachment {
        filename: format!("postmortem-{id}.md"),
        title: format!("Post-mortem timeline of {id}"),
        alt_text: format!("Timeline of incident {id}"),
        content_type: "text/markdown",
        bytes: markdown.into_bytes(),
    };
    incidents
        .chat
        .upload(&incident.channel, root.as_ref(), &file)
        .await?;
    Ok(format!(
        "The post-mortem timeline of `{id}` is attached in its thread."
    ))
}

fn status(incidents: &IncidentService, i: &IncidentRow) -> String {
    let opened = chrono::DateTime::from_timestamp_millis(i.opened_ms).unwrap_or_default();
    format!(
        "*{}* {}\n{}{} · {} · opened {}{}{}",
        i.id,
        i.title,
        i.severity
            .map(|s| format!("{} · ", s.badge()))
            .unwrap_or_default(),
        level_name(i.level),
        i.state,
        stamp(opened, incidents.tz),
        i.acked_ms
            .map(|a| format!(" · acknowledged after {}", minutes(a - i.opened_ms)))
            .unwrap_or_default(),
        i.resolved_ms
            .map(|r| format!(" · resolved after {}", minutes(r - i.opened_ms)))
            .unwrap_or_default(),
    )
}

/// The incident as a Markdown post-mortem, from the stored rows only.
pub(crate) async fn timeline(
    incidents: &IncidentService,
    i: &IncidentRow,
) -> Result<String, ActionError> {
    let tz = incidents.tz;
    let at = |ms: i64| {
        stamp(
            chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default(),
            tz,
        )
    };
    let events = incidents.store.incident_events(&i.id).await?;
    let plans = incidents.store.plans_of_incident(&i.id).await?;
    let mut md = format!("# Post-mortem: {} — {}\n\n", i.id, i.title);
    md.push_str(&format!(
        "- Opened: {}\n- Highest level reached: {}\n- State: {}\n",
        at(i.opened_ms),
        level_name(i.level),
        i.state
    ));
    match i.acked_ms {
        Some(a) => md.push_str(&format!(
            "- Time to acknowledge: {}\n",
            minutes(a - i.opened_ms)
        )),
        None => md.push_str("- Time to acknowledge: not acknowledged\n"),
    }
    match i.resolved_ms {
        Some(r) => md.push_str(&format!(
            "- Time to resolve: {}\n",
            minutes(r - i.opened_ms)
        )),
        None => md.push_str("- Time to resolve: not resolved\n"),
    }
    md.push_str("\n## Actions confirmed\n\n");
    if plans.is_empty() {
        md.push_str("None.\n");
    }
    for p in &plans {
        let approvers = incidents.store.approvals(&p.id).await?;
        md.push_str(&format!(
            "- `{}` `/scale {}` requested by {} — {}{}\n",
            p.id,
            p.command,
            p.requester,
            p.state,
            if approvers.is_empty() {
                String::new()
            } else {
                format!(", confirmed by {}", approvers.join(", "))
            }
        ));
    }
    md.push_str("\n## Timeline\n\n| time | actor | event | detail |\n| --- | --- | --- | --- |\n");
    for e in &events {
        let detail = e.body.replace('|', "\\\\|").replace('\n', " ");
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            at(e.at_ms),
            e.actor,
            e.kind,
            detail
        ));
    }
    Ok(md)
}
