//! The platform-neutral [`Message`] as a Discord message body: one embed
//! (title, description, fields, footer, colour by tone) and action rows of
//! buttons, clipped to Discord's documented limits so that no post is
//! refused for its size.

use serde_json::{Value, json};

use crate::chat::{ButtonAction, ButtonStyle, Message, Span, Syntax, Tone};

/// Discord's limits (developer docs, "Embed Limits" and "Components").
pub const CONTENT_MAX: usize = 2000;
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 4096;
const FIELDS_MAX: usize = 25;
const FIELD_NAME_MAX: usize = 256;
const FIELD_VALUE_MAX: usize = 1024;
const FOOTER_MAX: usize = 2048;
/// All text of all embeds of one message together.
const EMBED_TOTAL_MAX: usize = 6000;
const BUTTONS_PER_ROW: usize = 5;
const ROWS_MAX: usize = 5;
const LABEL_MAX: usize = 80;
pub const CUSTOM_ID_MAX: usize = 100;

/// Separates the action id from its value in a button's `custom_id`.
pub const ID_SEP: char = '|';
/// Prefix of a button that first asks for a second click (Discord has no
/// confirm dialog like Slack's).
pub const ASK_PREFIX: &str = "ask|";

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    crate::domain::truncate(s, max.saturating_sub(1))
}

/// Slack-flavoured markdown (what the engine writes) as Discord markdown:
/// `*bold*` becomes `**bold**`; code spans and `<@id>`/`<#id>` mentions are
/// the same on both.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    let mut in_code = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == '`' {
            in_code = !in_code;
        }
        let lone_star = c == '*'
            && !in_code
            && chars.get(i.wrapping_sub(1)).copied() != Some('*')
            && chars.get(i + 1).copied() != Some('*');
        if lone_star {
            out.push_str("**");
        } else {
            out.push(c);
        }
    }
    out
}

/// Discord markdown for the neutral text spans. Outside text has its
/// markdown escaped and `@everyone`/`@here` broken, so it formats nothing
/// and pings nobody (`allowed_mentions` on every message is the second
/// guard).
pub struct DiscordMarkdown;

impl Syntax for DiscordMarkdown {
    fn markup(&self, s: &str) -> String {
        markdown(s)
    }
    fn verbatim(&self, s: &str) -> String {
        escape_markdown(s)
    }
    fn user(&self, id: &str) -> String {
        format!("<@{id}>")
    }
    fn group(&self, id: &str) -> String {
        match id.strip_prefix('&') {
            Some(role) => format!("<@&{role}>"),
            // A Slack user group on Discord names nobody.
            None => format!("@{}", escape_markdown(id)),
        }
    }
    fn channel(&self, id: &str) -> String {
        format!("<#{id}>")
    }
    fn link(&self, url: &str, label: &str) -> String {
        format!("[{}]({})", escape_markdown(label), url.replace(')', "%29"))
    }
}

/// Embed footers show no markdown at all.
struct FooterText;

impl Syntax for FooterText {
    fn markup(&self, s: &str) -> String {
        s.replace('`', "")
    }
    fn verbatim(&self, s: &str) -> String {
        s.to_owned()
    }
    fn user(&self, id: &str) -> String {
        format!("@{id}")
    }
    fn group(&self, id: &str) -> String {
        format!("@{}", id.trim_start_matches('&'))
    }
    fn channel(&self, id: &str) -> String {
        format!("#{id}")
    }
    fn link(&self, url: &str, label: &str) -> String {
        format!("{label}: {url}")
    }
}

/// Text with Discord's markdown and mention characters escaped.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '#' | '[' | ']' | '(' | ')'
        ) {
            out.push('\\');
        }
        out.push(c);
        if c == '@' {
            // A zero-width space after `@` stops @everyone and @here.
            out.push('\u{200b}');
        }
    }
    out
}

fn colour(tone: Tone) -> u32 {
    match tone {
        Tone::Neutral => 0x5865F2,
        Tone::Good => 0x57F287,
        Tone::Warning => 0xFEE75C,
        Tone::Bad => 0xED4245,
    }
}

/// A button's `custom_id`: `action|value`, or `ask|action|value` when it
/// must be clicked twice. `None` when it does not fit in 100 characters.
pub fn custom_id(action: &ButtonAction, ask: bool) -> Option<String> {
    let (action_id, value) = action.wire();
    let id = format!(
        "{}{action_id}{ID_SEP}{value}",
        if ask { ASK_PREFIX } else { "" }
    );
    (id.chars().count() <= CUSTOM_ID_MAX).then_some(id)
}

/// `(action_id, value, ask)` from a `custom_id` this module made.
pub fn parse_custom_id(id: &str) -> Option<(&str, &str, bool)> {
    let (rest, ask) = match id.strip_prefix(ASK_PREFIX) {
        Some(rest) => (rest, true),
        None => (id, false),
    };
    let (action, value) = rest.split_once(ID_SEP)?;
    (!action.is_empty()).then_some((action, value, ask))
}

/// What is left of the 6000 characters all text of an embed may hold.
struct Budget(usize);

impl Budget {
    /// `s`, clipped to what is left, which shrinks by as much.
    fn take(&mut self, s: &str, max: usize) -> String {
        let max = max.min(self.0);
        if max == 0 {
            return String::new();
        }
        let out = clip(s, max);
        self.0 -= out.chars().count();
        out
    }
}

/// The embed of a message; `image` names an attached file to show in it.
pub fn embed(message: &Message, image: Option<&str>) -> Value {
    let mut budget = Budget(EMBED_TOTAL_MAX);
    let mut e = serde_json::Map::new();
    e.insert("color".into(), json!(colour(message.tone)));
    if let Some(title) = &message.title {
        let t = budget.take(&format!("{} {}", message.tone.emoji(), title), TITLE_MAX);
        e.insert("title".into(), json!(t));
    }
    if !message.text.is_empty() {
        let d = budget.take(&message.text.render(&DiscordMarkdown), DESCRIPTION_MAX);
        e.insert("description".into(), json!(d));
    }
    let mut fields = Vec::new();
    for f in message.fields.iter().take(FIELDS_MAX) {
        if budget.0 < 16 {
            break;
        }
        let name = budget.take(&f.label, FIELD_NAME_MAX);
        let value = budget.take(&markdown(&f.value), FIELD_VALUE_MAX);
        // Discord refuses empty field names or values.
        fields.push(json!({
            "name": if name.is_empty() { "\u{200b}".into() } else { name },
            "value": if value.is_empty() { "\u{200b}".into() } else { value },
            "inline": true,
        }));
    }
    if !fields.is_empty() {
        e.insert("fields".into(), Value::Array(fields));
    }
    if let Some(footer) = &message.footer {
        let f = budget.take(&footer.render(&FooterText), FOOTER_MAX);
        if !f.is_empty() {
            e.insert("footer".into(), json!({ "text": f }));
        }
    }
    if let Some(file) = image {
        e.insert(
            "image".into(),
            json!({ "url": format!("attachment://{file}") }),
        );
    }
    Value::Object(e)
}

/// Action rows of at most five buttons, at most five rows. A button whose
/// id would not fit is left out (and logged) rather than refused by Discord.
pub fn components(message: &Message) -> Vec<Value> {
    let mut buttons = Vec::new();
    for b in &message.buttons {
        // Discord has no confirm dialog: a destructive button asks for a
        // second click instead (see `ingress::discord`).
        let ask = b.confirm.is_some() && b.style == ButtonStyle::Danger;
        let Some(id) = custom_id(&b.action, ask) else {
            tracing::warn!(
                action = b.action.action_id(),
                "button id longer than Discord allows; left out"
            );
            continue;
        };
        buttons.push(json!({
            "type": 2,
            "style": match b.style {
                ButtonStyle::Primary => 1,
                ButtonStyle::Default => 2,
                ButtonStyle::Danger => 4,
            },
            "label": clip(&b.label, LABEL_MAX),
            "custom_id": id,
        }));
    }
    buttons
        .chunks(BUTTONS_PER_ROW)
        .take(ROWS_MAX)
        .map(|row| json!({ "type": 1, "components": row }))
        .collect()
}

/// The JSON body of a new message, an edit, or an interaction response.
/// `components` is always present so that an edit removes old buttons.
pub fn body(message: &Message) -> Value {
    json!({
        "embeds": [embed(message, None)],
        "components": components(message),
        "allowed_mentions": allowed_mentions(message),
    })
}

/// Exactly the people and roles the bot itself mentions (typed spans),
/// never @everyone, @here or anything that came in as outside text.
pub fn allowed_mentions(message: &Message) -> Value {
    let (mut users, mut roles) = (Vec::new(), Vec::new());
    let spans = message
        .text
        .0
        .iter()
        .chain(message.footer.iter().flat_map(|f| f.0.iter()));
    for span in spans {
        match span {
            Span::User(id) if !users.contains(id) => users.push(id.clone()),
            Span::Group(id) => {
                if let Some(role) = id.strip_prefix('&')
                    && !roles.iter().any(|r| r == role)
                {
                    roles.push(role.to_owned());
                }
            }
            _ => {}
        }
    }
    json!({ "parse": [], "users": users, "roles": roles })
}

/// The dialog a destructive button shows on its first click: the text and
/// a red button that really runs it.
pub fn second_click(action: &ButtonAction, title: &str, text: &str) -> Value {
    let run = custom_id(action, false).unwrap_or_default();
    json!({
        "content": clip(&format!("**{title}**\n{text}\nThis cannot be undone by clicking again: click the red button to run it."), CONTENT_MAX),
        "flags": 64,
        "components": [{ "type": 1, "components": [
            { "type": 2, "style": 4, "label": "Yes, run it", "custom_id": run },
            { "type": 2, "style": 2, "label": "Not yet", "custom_id": format!("dismiss{ID_SEP}") },
        ]}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Button, Confirm};

    fn button(n: usize, style: ButtonStyle, confirm: bool) -> Button {
        Button {
            label: format!("B{n}"),
            action: ButtonAction::Run {
                command: format!("throttles f{n}"),
                incident: None,
            },
            style,
            confirm: confirm.then(|| Confirm {
                title: "t".into(),
                text: "x".into(),
                confirm: "y".into(),
                deny: "n".into(),
            }),
        }
    }

    #[test]
    fn buttons_go_five_to_a_row() {
        let mut m = Message::text("hi");
        m.buttons = (0..12)
            .map(|n| button(n, ButtonStyle::Default, false))
            .collect();
        let rows = components(&m);
        let sizes: Vec<usize> = rows
            .iter()
            .map(|r| r["components"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, vec![5, 5, 2]);
    }

    #[test]
    fn only_destructive_confirm_buttons_ask_twice() {
        let mut m = Message::text("plan");
        m.buttons = vec![
            button(1, ButtonStyle::Danger, true),
            button(2, ButtonStyle::Primary, true),
        ];
        let rows = components(&m);
        assert_eq!(
            rows[0]["components"][0]["custom_id"],
            "ask|run|throttles f1"
        );
        assert_eq!(rows[0]["components"][0]["style"], 4);
        assert_eq!(rows[0]["components"][1]["custom_id"], "run|throttles f2");
        assert_eq!(
            parse_custom_id("ask|plan.confirm|P-1"),
            Some(("plan.confirm", "P-1", true))
        );
        assert_eq!(parse_custom_id("nonsense"), None);
    }

    #[test]
    fn long_text_is_clipped_to_the_embed_limits() {
        let mut m = Message::text("x".repeat(10_000));
        m.title = Some("t".repeat(500));
        for i in 0..40 {
            m = m.field(format!("f{i}"), "v".repeat(2000));
        }
        let e = embed(&m, None);
        assert!(e["title"].as_str().unwrap_or_default().chars().count() <= TITLE_MAX);
        assert!(
            e["description"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .count()
                <= DESCRIPTION_MAX
        );
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        assert!(fields.len() <= FIELDS_MAX);
        let total: usize = [&e["title"], &e["description"]]
            .iter()
            .map(|v| v.as_str().unwrap_or_default().chars().count())
            .sum::<usize>()
            + fields
                .iter()
                .map(|f| {
                    f["name"].as_str().unwrap_or_default().chars().count()
                        + f["value"].as_str().unwrap_or_default().chars().count()
                })
                .sum::<usize>();
        assert!(total <= EMBED_TOTAL_MAX, "{total}");
    }

    #[test]
    fn slack_bold_becomes_discord_bold() {
        assert_eq!(
            markdown("*Throttles* `a*b` **x**"),
            "**Throttles** `a*b` **x**"
        );
    }

    #[test]
    fn an_overlong_button_id_is_left_out() {
        let mut m = Message::text("x");
        let mut b = button(1, ButtonStyle::Default, false);
        b.action = ButtonAction::Run {
            command: "v".repeat(200),
            incident: None,
        };
        m.buttons = vec![b];
        assert!(components(&m).is_empty());
    }

    #[test]
    fn outside_text_formats_nothing_and_pings_nobody() {
        let text = crate::chat::Text::from("*Note* by ")
            .user("42")
            .markup(": ")
            .verbatim("@everyone <@&7> **x**")
            .group("&7")
            .link("https://example.com/a", "console");
        assert_eq!(
            text.render(&DiscordMarkdown),
            "**Note** by <@42>: @\u{200b}everyone \\<@\u{200b}&7\\> \\*\\*x\\*\\*<@&7>[console](https://example.com/a)"
        );
    }

    #[test]
    fn only_the_bots_own_mentions_may_ping() {
        let mut m = Message::text(
            crate::chat::Text::from("⬆️ Escalated by ")
                .user("42")
                .markup(".")
                .group("&7")
                .group("S01")
                .verbatim("<@99> @everyone <@&8>"),
        );
        m.footer = Some(crate::chat::Text::new().user("42"));
        assert_eq!(
            allowed_mentions(&m),
            json!({ "parse": [], "users": ["42"], "roles": ["7"] })
        );
    }
}
