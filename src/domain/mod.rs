//! Newtypes that parse instead of validate: once a value has one of these
//! types it is known to be acceptable to AWS.

pub mod glob;
pub mod metric;
pub mod people;
pub mod severity;
pub mod silence;
pub mod state;

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DomainError(pub String);

/// A Lambda function name as AWS accepts it: 1–64 letters, digits, `-`, `_`.
/// Config files name functions too, so it parses there as well.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct FunctionName(String);

impl FunctionName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError(format!(
                "`{}` is not a Lambda function name (1-64 letters, digits, `-` or `_`)",
                truncate(raw, 80)
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FunctionName {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

/// Lets a map keyed by name be looked up with a `&str`: equality and order
/// are the inner string's.
impl std::borrow::Borrow<str> for FunctionName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keeps echoed user input short in error messages.
pub fn truncate(raw: &str, max_chars: usize) -> String {
    if raw.chars().count() <= max_chars {
        raw.to_owned()
    } else {
        let mut s: String = raw.chars().take(max_chars).collect();
        s.push('…');
        s
    }
}

/// A short random id people can type: `INC-3F9A2C`, `P-07B1DE`.
pub fn short_id(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("{prefix}-{}", &raw[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert!(FunctionName::parse("persona-api").is_ok());
        assert!(FunctionName::parse("auth_handler2").is_ok());
        assert!(FunctionName::parse("").is_err());
        assert!(FunctionName::parse("persona api").is_err());
        assert!(FunctionName::parse("a;rm -rf").is_err());
        assert!(FunctionName::parse(&"x".repeat(65)).is_err());
    }
}
