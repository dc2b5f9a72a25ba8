//! Message text as the services write it: spans that each adapter renders
//! in its platform's syntax. Mentions, channel links and links are typed,
//! so no service writes `<@…>`, `<!subteam^…>` or `<#…>`; text a person
//! typed or AWS sent is verbatim, so it can never become markup or a
//! mention (`@channel`, `<!here>`, a role) on any platform.
//!
//! Markup spans use the model's own light markup: `*bold*`, `` `code` ``
//! and line breaks, which every adapter translates.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// The bot's own words, with `*bold*` and `` `code` ``.
    Markup(String),
    /// Words from outside (a note, an alarm's reason, a subject): shown
    /// exactly, never as markup or a mention.
    Verbatim(String),
    /// A person, by the platform's user id.
    User(String),
    /// A group of people as configured: a Slack user group (`S…`) or a
    /// Discord role (`&<id>`).
    Group(String),
    /// A channel, by the platform's id.
    Channel(String),
    Link {
        url: String,
        label: String,
    },
}

/// A sequence of spans.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub Vec<Span>);

impl Text {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn markup(mut self, s: impl Into<String>) -> Self {
        self.push_markup(s);
        self
    }

    pub fn verbatim(mut self, s: impl Into<String>) -> Self {
        self.0.push(Span::Verbatim(s.into()));
        self
    }

    pub fn user(mut self, id: impl Into<String>) -> Self {
        self.0.push(Span::User(id.into()));
        self
    }

    pub fn group(mut self, id: impl Into<String>) -> Self {
        self.0.push(Span::Group(id.into()));
        self
    }

    pub fn channel(mut self, id: impl Into<String>) -> Self {
        self.0.push(Span::Channel(id.into()));
        self
    }

    pub fn link(mut self, url: impl Into<String>, label: impl Into<String>) -> Self {
        self.0.push(Span::Link {
            url: url.into(),
            label: label.into(),
        });
        self
    }

    /// Several people, joined with `sep`.
    pub fn users<'a>(mut self, ids: impl IntoIterator<Item = &'a String>, sep: &str) -> Self {
        for (i, id) in ids.into_iter().enumerate() {
            if i > 0 {
                self = self.markup(sep);
            }
            self = self.user(id.clone());
        }
        self
    }

    pub fn push_markup(&mut self, s: impl Into<String>) {
        let s = s.into();
        if let Some(Span::Markup(last)) = self.0.last_mut() {
            last.push_str(&s);
        } else if !s.is_empty() {
            self.0.push(Span::Markup(s));
        }
    }

    /// Appends another text.
    pub fn append(mut self, other: Text) -> Self {
        for span in other.0 {
            match span {
                Span::Markup(s) => self.push_markup(s),
                other => self.0.push(other),
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|s| match s {
            Span::Markup(s) | Span::Verbatim(s) => s.is_empty(),
            _ => false,
        })
    }

    /// The words alone, for notifications and screen readers: mentions and
    /// channels by id, links by label.
    pub fn plain(&self) -> String {
        self.render(&Plain)
    }

    /// The text in one platform's syntax.
    pub fn render(&self, syntax: &dyn Syntax) -> String {
        let mut out = String::new();
        for span in &self.0 {
            match span {
                Span::Markup(s) => out.push_str(&syntax.markup(s)),
                Span::Verbatim(s) => out.push_str(&syntax.verbatim(s)),
                Span::User(id) => out.push_str(&syntax.user(id)),
                Span::Group(id) => out.push_str(&syntax.group(id)),
                Span::Channel(id) => out.push_str(&syntax.channel(id)),
                Span::Link { url, label } => out.push_str(&syntax.link(url, label)),
            }
        }
        out
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::new().markup(s)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::new().markup(s)
    }
}

/// How one platform writes each kind of span.
pub trait Syntax {
    fn markup(&self, s: &str) -> String;
    fn verbatim(&self, s: &str) -> String;
    fn user(&self, id: &str) -> String;
    fn group(&self, id: &str) -> String;
    fn channel(&self, id: &str) -> String;
    fn link(&self, url: &str, label: &str) -> String;
}

struct Plain;

impl Syntax for Plain {
    fn markup(&self, s: &str) -> String {
        s.to_owned()
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
    fn link(&self, _url: &str, label: &str) -> String {
        label.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_spans_merge_and_plain_text_names_everything() {
        let t = Text::from("Acknowledged by ")
            .user("U1")
            .markup(" in ")
            .channel("C1")
            .markup(": ")
            .verbatim("<!channel> *x*")
            .link("https://example.com", "console");
        assert_eq!(t.0.len(), 7);
        assert_eq!(
            t.plain(),
            "Acknowledged by @U1 in #C1: <!channel> *x*console"
        );
        let merged = Text::from("a").markup("b").append(Text::from("c"));
        assert_eq!(merged.0, vec![Span::Markup("abc".into())]);
        assert!(Text::new().is_empty());
        assert!(!Text::new().user("U1").is_empty());
    }
}
