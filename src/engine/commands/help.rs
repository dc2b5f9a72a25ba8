//! `/scale help` and `/scale help <command>`.

use crate::catalog::{Catalog, CommandSpec};
use crate::chat::Message;

pub fn catalog(catalog: &Catalog) -> Message {
    let mut lines = Vec::new();
    for spec in catalog.iter() {
        let marker = if spec.changes { " ✋" } else { "" };
        lines.push(format!(
            "• `{}`{marker} — {}",
            spec.usage_line("/scale"),
            spec.summary
        ));
    }
    Message {
        title: Some("scalebot commands".into()),
        text: lines.join("\n").into(),
        footer: Some(
            "✋ changes AWS and runs only after an in-channel confirmation. `/scale help <command>` explains one command."
                .into(),
        ),
        ..Default::default()
    }
}

pub fn command(spec: &CommandSpec) -> Message {
    let mut text = format!("`{}`\n{}", spec.usage_line("/scale"), spec.summary);
    if !spec.help.is_empty() {
        text.push_str("\n\n");
        text.push_str(spec.help.trim());
    }
    if !spec.args.is_empty() {
        text.push_str("\n\n*Arguments*");
        for a in &spec.args {
            let optional = if a.required { "" } else { " (optional)" };
            text.push_str(&format!("\n• `<{}>`{optional} {}", a.name, a.help));
        }
    }
    Message {
        title: Some(format!("/scale {}", spec.name)),
        text: text.into(),
        footer: (!spec.runbook.is_empty()).then(|| format!("Runbook: {}", spec.runbook).into()),
        ..Default::default()
    }
}
