//! Parsing what follows the slash command against the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ArgKind, Catalog, CommandSpec};
use crate::domain::{FunctionName, truncate};

/// A typed argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Function(FunctionName),
    Integer(i64),
    Number(f64),
    Date(chrono::NaiveDate),
    Word(String),
    List(Vec<ArgValue>),
}

impl std::fmt::Display for ArgValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgValue::Function(n) => write!(f, "{n}"),
            ArgValue::Integer(i) => write!(f, "{i}"),
            ArgValue::Number(n) => write!(f, "{n}"),
            ArgValue::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            ArgValue::Word(w) => f.write_str(w),
            ArgValue::List(items) => {
                let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                f.write_str(&parts.join(" "))
            }
        }
    }
}

/// A command with its arguments parsed and checked.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub spec: Arc<CommandSpec>,
    pub args: BTreeMap<String, ArgValue>,
}

impl Invocation {
    pub fn function(&self, name: &str) -> Option<&FunctionName> {
        match self.args.get(name) {
            Some(ArgValue::Function(f)) => Some(f),
            _ => None,
        }
    }
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.args.get(name) {
            Some(ArgValue::Integer(i)) => Some(*i),
            _ => None,
        }
    }
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.args.get(name) {
            Some(ArgValue::Number(n)) => Some(*n),
            Some(ArgValue::Integer(i)) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn word(&self, name: &str) -> Option<&str> {
        match self.args.get(name) {
            Some(ArgValue::Word(w)) => Some(w),
            _ => None,
        }
    }
    pub fn date(&self, name: &str) -> Option<chrono::NaiveDate> {
        match self.args.get(name) {
            Some(ArgValue::Date(d)) => Some(*d),
            _ => None,
        }
    }
    /// Every function named by a `many` argument (or the single one).
    pub fn functions(&self, name: &str) -> Vec<FunctionName> {
        match self.args.get(name) {
            Some(ArgValue::Function(f)) => vec![f.clone()],
            Some(ArgValue::List(items)) => items
                .iter()
                .filter_map(|i| match i {
                    ArgValue::Function(f) => Some(f.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    /// The invocation as it could be typed again, for logs and the audit.
    pub fn canonical(&self) -> String {
        let mut s = self.spec.name.clone();
        for arg in &self.spec.args {
            if let Some(v) = self.args.get(&arg.name) {
                s.push(' ');
                s.push_str(&v.to_string());
            }
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command `{verb}`{}", .suggestion.as_ref().map(|s| format!(". Did you mean `{s}`?")).unwrap_or_default())]
    UnknownVerb {
        verb: String,
        suggestion: Option<String>,
    },
    #[error("missing <{arg}>. Usage: `{usage}`")]
    MissingArg { arg: String, usage: String },
    #[error("<{arg}>: {reason}. Usage: `{usage}`")]
    BadArg {
        arg: String,
        reason: String,
        usage: String,
    },
    #[error("unexpected `{extra}`. Usage: `{usage}`")]
    TooMany { extra: String, usage: String },
}

#[derive(Debug, Clone)]
pub enum Parsed {
    /// `help`, or `help <command>`.
    Help(Option<Arc<CommandSpec>>),
    Run(Invocation),
    Error(ParseError),
}

/// The slash command as users see it in usage lines.
const SLASH: &str = "/scale";

pub(super) fn parse(catalog: &Catalog, text: &str) -> Parsed {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let Some(first) = tokens.first() else {
        return Parsed::Help(None);
    };
    if first.eq_ignore_ascii_case("help") {
        if tokens.len() == 1 {
            return Parsed::Help(None);
        }
        return match find(catalog, &tokens[1..]) {
            Some((spec, _)) => Parsed::Help(Some(spec.clone())),
            None => Parsed::Error(unknown(catalog, &tokens[1..])),
        };
    }
    match find(catalog, &tokens) {
        Some((spec, used)) => match bind(spec, &tokens[used..]) {
            Ok(args) => Parsed::Run(Invocation {
                spec: spec.clone(),
                args,
            }),
            Err(e) => Parsed::Error(e),
        },
        None => Parsed::Error(unknown(catalog, &tokens)),
    }
}

/// The command whose name is the longest prefix of `tokens`.
fn find<'c>(catalog: &'c Catalog, tokens: &[&str]) -> Option<(&'c Arc<CommandSpec>, usize)> {
    catalog
        .iter()
        .filter_map(|spec| {
            let words = spec.words();
            let matches = words.len() <= tokens.len()
                && words
                    .iter()
                    .zip(tokens)
                    .all(|(w, t)| w.eq_ignore_ascii_case(t));
            matches.then_some((spec, words.len()))
        })
        .max_by_key(|(_, n)| *n)
}

fn unknown(catalog: &Catalog, tokens: &[&str]) -> ParseError {
    let typed_one = tokens.first().copied().unwrap_or_default().to_lowercase();
    let typed_two = tokens
        .iter()
        .take(2)
        .map(|t| t.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let best = catalog
        .iter()
        .map(|spec| {
            let typed = if spec.words().len() == 2 {
                &typed_two
            } else {
                &typed_one
            };
            (strsim::damerau_levenshtein(typed, &spec.name), spec)
        })
        .min_by_key(|(d, _)| *d);
    let verb = if best
        .as_ref()
        .is_some_and(|(_, spec)| spec.words().len() == 2)
    {
        typed_two.clone()
    } else {
        typed_one.clone()
    };
    let suggestion = best
        .filter(|(d, spec)| *d <= (spec.name.len() / 3).max(2))
        .map(|(_, spec)| spec.name.clone());
    ParseError::UnknownVerb {
        verb: truncate(&verb, 40),
        suggestion,
    }
}

fn bind(spec: &CommandSpec, tokens: &[&str]) -> Result<BTreeMap<String, ArgValue>, ParseError> {
    let usage = spec.usage_line(SLASH);
    let mut args = BTreeMap::new();
    for (i, arg) in spec.args.iter().enumerate() {
        let Some(raw) = tokens.get(i) else {
            if arg.required {
                return Err(ParseError::MissingArg {
                    arg: arg.name.clone(),
                    usage,
                });
            }
            if let Some(default) = &arg.default {
                let raw = match default {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                args.insert(arg.name.clone(), value(arg, &raw, &usage)?);
            }
            continue;
        };
        if arg.many {
            let values = tokens[i..]
                .iter()
                .map(|raw| value(arg, raw, &usage))
                .collect::<Result<Vec<_>, _>>()?;
            args.insert(arg.name.clone(), ArgValue::List(values));
            return Ok(args);
        }
        args.insert(arg.name.clone(), value(arg, raw, &usage)?);
    }
    if let Some(extra) = tokens.get(spec.args.len()) {
        return Err(ParseError::TooMany {
            extra: truncate(extra, 40),
            usage,
        });
    }
    Ok(args)
}

fn value(arg: &super::ArgSpec, raw: &str, usage: &str) -> Result<ArgValue, ParseError> {
    let keyword = arg.choices.iter().find(|c| c.eq_ignore_ascii_case(raw));
    let parsed = match arg.kind {
        ArgKind::Function => FunctionName::parse(raw)
            .map(ArgValue::Function)
            .map_err(|e| e.0),
        ArgKind::Qualifier => qualifier(raw),
        ArgKind::Word => match (arg.choices.is_empty(), keyword) {
            (true, _) => Ok(ArgValue::Word(truncate(raw, 100))),
            (false, Some(k)) => Ok(ArgValue::Word(k.clone())),
            (false, None) => Err(format!(
                "`{}` is not one of: {}",
                truncate(raw, 40),
                arg.choices.join(", ")
            )),
        },
        ArgKind::Date => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .or_else(|_| chrono::NaiveDate::parse_from_str(raw, "%Y%m%d"))
            .map(ArgValue::Date)
            .map_err(|_| format!("`{}` is not a date (YYYY-MM-DD)", truncate(raw, 20))),
        ArgKind::Integer | ArgKind::Number => match keyword {
            Some(k) => Ok(ArgValue::Word(k.clone())),
            None => number(arg, raw),
        },
    };
    parsed.map_err(|reason| ParseError::BadArg {
        arg: arg.name.clone(),
        reason,
        usage: usage.to_owned(),
    })
}

/// A Lambda alias or version; `$LATEST` is refused with the reason.
fn qualifier(raw: &str) -> Result<ArgValue, String> {
    if raw.eq_ignore_ascii_case("$LATEST") {
        return Err(
            "AWS does not allow provisioned concurrency on `$LATEST`; name an alias or a published version \
             (the runbook's scale-down passes `$LATEST`, which AWS rejects)"
                .into(),
        );
    }
    let ok = !raw.is_empty()
        && raw.len() <= 128
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(ArgValue::Word(raw.to_owned()))
    } else {
        Err(format!(
            "`{}` is not an alias or version",
            truncate(raw, 40)
        ))
    }
}

/// A number argument that is not one of its keywords: finite, whole for an
/// integer, within `min`..=`max`.
fn number(arg: &super::ArgSpec, raw: &str) -> Result<ArgValue, String> {
    let n: f64 = raw
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| {
            let also = if arg.choices.is_empty() {
                String::new()
            } else {
                format!(" or {}", arg.choices.join(", "))
            };
            format!("`{}` is not a number{also}", truncate(raw, 20))
        })?;
    if arg.kind == ArgKind::Integer && n.fract() != 0.0 {
        return Err(format!("`{}` is not a whole number", truncate(raw, 20)));
    }
    if let Some(min) = arg.min
        && n < min
    {
        return Err(format!("{n} is below the minimum {min}"));
    }
    if let Some(max) = arg.max
        && n > max
    {
        return Err(format!("{n} is above the maximum {max}"));
    }
    Ok(if arg.kind == ArgKind::Integer {
        ArgValue::Integer(n as i64)
    } else {
        ArgValue::Number(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ArgSpec;

    fn spec(name: &str, args: Vec<ArgSpec>) -> CommandSpec {
        CommandSpec {
            name: name.into(),
            summary: "s".into(),
            usage: args
                .iter()
                .map(|a| format!("<{}>", a.name))
                .collect::<Vec<_>>()
                .join(" "),
            help: String::new(),
            runbook: String::new(),
            action: "throttles".into(),
            chart: None,
            changes: false,
            confirm: None,
            role: None,
            args,
            params: Default::default(),
            file: Default::default(),
        }
    }

    fn arg(name: &str, kind: ArgKind, required: bool) -> ArgSpec {
        ArgSpec {
            name: name.into(),
            kind,
            help: String::new(),
            required,
            min: Some(0.0).filter(|_| kind == ArgKind::Integer),
            max: Some(1000.0).filter(|_| kind == ArgKind::Integer),
            choices: Vec::new(),
            many: false,
            default: None,
        }
    }

    fn catalog() -> Catalog {
        Catalog::from_specs([
            spec("throttles", vec![arg("function", ArgKind::Function, true)]),
            spec(
                "concurrency",
                vec![
                    arg("function", ArgKind::Function, true),
                    arg("value", ArgKind::Integer, false),
                ],
            ),
            spec("rds connections", vec![arg("db", ArgKind::Word, true)]),
            spec("rds proxy", vec![arg("db", ArgKind::Word, true)]),
        ])
    }

    #[test]
    fn parses_a_command_and_its_arguments() {
        let Parsed::Run(inv) = catalog().parse("throttles persona-api") else {
            panic!("expected a command")
        };
        assert_eq!(inv.spec.name, "throttles");
        assert_eq!(
            inv.function("function").map(|f| f.as_str()),
            Some("persona-api")
        );
        assert_eq!(inv.canonical(), "throttles persona-api");
    }

    #[test]
    fn two_word_commands_and_case() {
        let Parsed::Run(inv) = catalog().parse("  RDS   Proxy matbakh-db ") else {
            panic!("expected a command")
        };
        assert_eq!(inv.spec.name, "rds proxy");
    }

    #[test]
    fn help_and_empty() {
        assert!(matches!(catalog().parse(""), Parsed::Help(None)));
        assert!(matches!(catalog().parse("help"), Parsed::Help(None)));
        assert!(
            matches!(catalog().parse("help throttles"), Parsed::Help(Some(s)) if s.name == "throttles")
        );
    }

    #[test]
    fn unknown_verb_suggests_the_closest() {
        let Parsed::Error(e) = catalog().parse("throtles persona-api") else {
            panic!()
        };
        assert_eq!(
            e,
            ParseError::UnknownVerb {
                verb: "throtles".into(),
                suggestion: Some("throttles".into())
            }
        );
        let Parsed::Error(e) = catalog().parse("rds proxi x") else {
            panic!()
        };
        assert!(e.to_string().contains("rds proxy"), "{e}");
        let Parsed::Error(e) = catalog().parse("launch-missiles") else {
            panic!()
        };
        assert!(matches!(
            e,
            ParseError::UnknownVerb {
                suggestion: None,
                ..
            }
        ));
    }

    #[test]
    fn missing_bad_and_extra_arguments_show_usage() {
        let Parsed::Error(e) = catalog().parse("throttles") else {
            panic!()
        };
        assert!(matches!(e, ParseError::MissingArg { .. }));
        assert!(e.to_string().contains("/scale throttles <function>"), "{e}");

        let Parsed::Error(e) = catalog().parse("throttles bad;name") else {
            panic!()
        };
        assert!(matches!(e, ParseError::BadArg { .. }), "{e}");

        let Parsed::Error(e) = catalog().parse("concurrency persona-api 5000") else {
            panic!()
        };
        assert!(e.to_string().contains("above the maximum 1000"), "{e}");

        let Parsed::Error(e) = catalog().parse("concurrency persona-api ten") else {
            panic!()
        };
        assert!(e.to_string().contains("not a number"), "{e}");

        let Parsed::Error(e) = catalog().parse("throttles a b") else {
            panic!()
        };
        assert!(matches!(e, ParseError::TooMany { .. }));
    }

    #[test]
    fn optional_arguments() {
        assert!(matches!(
            catalog().parse("concurrency persona-api"),
            Parsed::Run(_)
        ));
    }
}
