//! Name patterns for severity rules and silences: `*` (any run of
//! characters), `?` (one character) and `[abc]`, `[a-z]`, `[!abc]` (one
//! character of a set). ASCII case is ignored: people type alarm and
//! function names in chat, and AWS names that differ only by case are
//! rare enough not to be worth a surprise.

use std::fmt;

use super::DomainError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Any,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A parsed pattern; [`Glob::parse`] refuses what would not mean anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

/// Longer than any AWS alarm name (255) plus some room.
const MAX_LEN: usize = 300;

impl Glob {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| {
            DomainError(format!(
                "`{}` is not a name pattern: {why}",
                super::truncate(raw, 60)
            ))
        };
        if raw.trim().is_empty() {
            return Err(bad("it is empty"));
        }
        if raw.chars().count() > MAX_LEN || raw.chars().any(char::is_control) {
            return Err(bad("it is too long or holds control characters"));
        }
        let mut tokens = Vec::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Any,
                '?' => Token::One,
                '[' => set(&mut chars).ok_or_else(|| {
                    bad("a `[` set is not closed with `]` or is empty (write `[abc]`, `[a-z]` or `[!abc]`)")
                })?,
                ']' => return Err(bad("a `]` has no `[` before it")),
                other => Token::Literal(other.to_ascii_lowercase()),
            });
        }
        Ok(Self {
            text: raw.to_owned(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `name` fits the pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
        matches_from(&self.tokens, &name)
    }
}

/// The tokens of a `[...]` set after its `[`; `None` if it never closes
/// or holds nothing.
fn set(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Token> {
    let negated = chars.next_if_eq(&'!').is_some();
    let mut ranges = Vec::new();
    loop {
        let c = chars.next()?;
        if c == ']' {
            break;
        }
        let lo = c.to_ascii_lowercase();
        let hi = match chars.next_if_eq(&'-') {
            Some(_) => match chars.next()? {
                ']' => {
                    // `[a-]`: a literal `-` at the end.
                    ranges.push((lo, lo));
                    ranges.push(('-', '-'));
                    break;
                }
                h => h.to_ascii_lowercase(),
            },
            None => lo,
        };
        ranges.push((lo.min(hi), lo.max(hi)));
    }
    (!ranges.is_empty()).then_some(Token::Set { negated, ranges })
}

/// Iterative matching with one backtrack point for the last `*`: linear
/// in practice, never exponential.
fn matches_from(tokens: &[Token], name: &[char]) -> bool {
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Any) => {
                star = Some((t, n));
                t += 1;
            }
            Some(tok) if fits(tok, name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match star {
                Some((st, sn)) => {
                    t = st + 1;
                    n = sn + 1;
                    star = Some((st, sn + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Any)
}

fn fits(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::One => true,
        Token::Any => false,
        Token::Set { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
    }
}

impl TryFrom<String> for Glob {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Glob::parse(pattern).expect("a pattern").matches(name)
    }

    #[test]
    fn stars_questions_and_sets() {
        assert!(m("persona-api", "persona-api"));
        assert!(m("persona-api", "Persona-API"));
        assert!(!m("persona-api", "persona-api-2"));
        assert!(m("persona-*", "persona-api-throttles"));
        assert!(m("*-throttles", "auth-throttles"));
        assert!(!m("*-throttles", "auth-errors"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "a-x-b-y-c"));
        assert!(!m("a*b*c", "a-x-b-y"));
        assert!(m("fn-?", "fn-1"));
        assert!(!m("fn-?", "fn-12"));
        assert!(m("fn-[0-9]", "fn-7"));
        assert!(!m("fn-[!0-9]", "fn-7"));
        assert!(m("fn[a-]", "fn-"));
    }

    #[test]
    fn broken_patterns_are_refused_with_the_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("fn-[0-9", "not closed"),
            ("fn-[]", "not closed"),
            ("fn-]", "has no `[`"),
        ] {
            let e = Glob::parse(bad).expect_err(bad);
            assert!(e.0.contains(why), "{bad}: {}", e.0);
        }
    }

    #[test]
    fn long_runs_of_stars_stay_fast() {
        let pattern = "*a".repeat(40);
        assert!(!m(&pattern, &"b".repeat(250)));
    }
}
