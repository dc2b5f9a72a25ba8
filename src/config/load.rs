//! Loading a config file: laid over the embedded defaults
//! (`config/defaults.toml`), then deserialised once into typed values, with
//! every error named by file and key.
//!
//! Why a defaults file rather than serde defaults: the defaults are then
//! one file a user can read (and a test compares with the documented
//! example), and no section needs a hand-written `Default`. serde's
//! `#[serde(default)]` cannot take them from that file, since it builds
//! the default value before it reads a single key, and the file's
//! sections are these very types. Laying the user's table over the
//! defaults' also keeps `deny_unknown_fields` on every section, which
//! `#[serde(flatten)]` would not.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use toml::{Table, Value};

use super::ConfigError;

/// The defaults, as shipped.
const DEFAULTS: &str = include_str!("../../config/defaults.toml");
const DEFAULTS_FILE: &str = "config/defaults.toml";

/// The key in the defaults' `[functions]` that every `[functions.<name>]`
/// section is laid over (not a function: `*` is no valid name).
const FUNCTION_TEMPLATE: &str = "*";

/// Reads and parses `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// `text`, the contents of `path`, laid over the defaults and deserialised.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let user: Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut table = defaults_table()?;
    lay_functions_over_template(&mut table, user);
    deserialize(path, text, table)
}

/// The defaults alone, as `T`: an error only if the shipped file is broken,
/// which the tests rule out.
pub fn defaults<T: DeserializeOwned>() -> Result<T, ConfigError> {
    parse(Path::new(DEFAULTS_FILE), "")
}

/// The guardrails of a function without a section of its own: the
/// defaults' template (an error only if the shipped file is broken).
pub(super) static FUNCTION_DEFAULTS: LazyLock<Result<super::FunctionSettings, ConfigError>> =
    LazyLock::new(|| {
        let template = defaults_table()?
            .remove("functions")
            .and_then(|mut f| f.as_table_mut()?.remove(FUNCTION_TEMPLATE))
            .unwrap_or_else(|| Value::Table(Table::new()));
        deserialize(Path::new(DEFAULTS_FILE), "", template)
    });

fn defaults_table() -> Result<Table, ConfigError> {
    toml::from_str(DEFAULTS).map_err(|e| ConfigError::Parse {
        path: PathBuf::from(DEFAULTS_FILE),
        message: e.to_string(),
    })
}

/// Lays `user` over `base`: a table key by key, any other value (a list
/// included) as a whole, so a list in the config replaces the default one.
fn lay_over(base: &mut Table, user: Table) {
    for (key, value) in user {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(u)) => lay_over(b, u),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// [`lay_over`], except that each of the user's `[functions.<name>]`
/// starts from the defaults' template rather than from nothing.
fn lay_functions_over_template(base: &mut Table, mut user: Table) {
    let template = match base.get_mut("functions") {
        Some(Value::Table(f)) => f.remove(FUNCTION_TEMPLATE),
        _ => None,
    };
    if let (Some(Value::Table(template)), Some(Value::Table(functions))) =
        (template, user.get_mut("functions"))
    {
        for (_, section) in functions.iter_mut() {
            if let Value::Table(own) = section {
                let mut merged = template.clone();
                lay_over(&mut merged, std::mem::take(own));
                *own = merged;
            }
        }
    }
    lay_over(base, user);
}

fn deserialize<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    table: impl Into<Value>,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(table.into()).map_err(|e| {
        let message = e.inner().message().to_owned();
        let mut segments: Vec<Segment> = e.path().iter().cloned().collect();
        // An unknown key is reported at the table that holds it; name it.
        if let Some(unknown) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            && !matches!(segments.last(), Some(Segment::Map { key }) if key == unknown)
        {
            segments.push(Segment::Map {
                key: unknown.to_owned(),
            });
        }
        let message = match line_of(text, &segments) {
            Some(line) => format!("{message} (line {line})"),
            None => message,
        };
        ConfigError::Invalid {
            path: path.to_owned(),
            key: key_of(&segments),
            message,
        }
    })
}

/// `reports.daily_at`, `runbook.functions[2]`.
fn key_of(segments: &[Segment]) -> String {
    let mut key = String::new();
    for s in segments {
        match s {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            other => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(&other.to_string());
            }
        }
    }
    key
}

/// The line of the config file that sets the key at `segments` (or, when
/// the file leaves it out, the nearest enclosing key the file has).
fn line_of(text: &str, segments: &[Segment]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table = Some(doc.get_ref());
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    for s in segments {
        let found = match (s, table, value) {
            (Segment::Map { key }, Some(t), _) => t.get(key.as_str()),
            (Segment::Seq { index }, _, Some(v)) => v.as_array().and_then(|a| a.get(*index)),
            _ => None,
        };
        let Some(found) = found else { break };
        span = Some(found.span());
        value = Some(found.get_ref());
        table = found.get_ref().as_table();
    }
    let start = span?.start.min(text.len());
    Some(text[..start].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests;
