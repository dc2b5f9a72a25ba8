//! `[permissions]`: which roles of `[roles]` may control incidents and
//! which may read AWS data. A command file's own `role` (see
//! `catalog::CommandSpec::role`) overrides the reading roles for that
//! command; who confirms a change stays in its `[confirm]`.

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionSettings {
    /// Members of any of these roles may acknowledge, escalate, resolve,
    /// keep open and annotate incidents (commands and buttons).
    #[serde(deserialize_with = "roles")]
    pub incidents: Vec<String>,
    /// Members of any of these roles may run the commands that read AWS
    /// data and view incidents; left out, everyone may.
    #[serde(default, deserialize_with = "optional_roles")]
    pub read: Option<Vec<String>>,
}

/// At least one role name; an empty list would lock everybody out, which
/// is never what a config means.
fn roles<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    if list.is_empty() || list.iter().any(|r| r.trim().is_empty()) {
        return Err(serde::de::Error::custom(
            "must name at least one role of [roles] (and no empty name)",
        ));
    }
    Ok(list)
}

fn optional_roles<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    roles(d).map(Some)
}

impl PermissionSettings {
    /// Every role these settings name, for the checks against `[roles]`.
    pub fn named_roles(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let incidents = self
            .incidents
            .iter()
            .map(|r| ("permissions.incidents", r.as_str()));
        let read = self
            .read
            .iter()
            .flatten()
            .map(|r| ("permissions.read", r.as_str()));
        incidents.chain(read)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        permissions: PermissionSettings,
    }

    fn parse(text: &str) -> Result<PermissionSettings, crate::config::ConfigError> {
        crate::config::parse::<File>(Path::new("x.toml"), text).map(|f| f.permissions)
    }

    #[test]
    fn incidents_default_to_responders_or_operators_and_reading_to_everyone() {
        let p = parse("").expect("defaults");
        assert_eq!(p.incidents, ["responders", "operators"]);
        assert_eq!(p.read, None);
        let p = parse("[permissions]\nread = [\"viewers\", \"operators\"]\n").expect("valid");
        assert_eq!(
            p.read.as_deref(),
            Some(&["viewers".into(), "operators".into()][..])
        );
        assert_eq!(
            p.named_roles().collect::<Vec<_>>(),
            [
                ("permissions.incidents", "responders"),
                ("permissions.incidents", "operators"),
                ("permissions.read", "viewers"),
                ("permissions.read", "operators"),
            ]
        );
    }

    #[test]
    fn an_empty_list_is_refused_by_key() {
        for (text, key) in [
            ("[permissions]\nincidents = []\n", "permissions.incidents"),
            ("[permissions]\nread = []\n", "permissions.read"),
            ("[permissions]\nread = [\"\"]\n", "permissions.read"),
            ("[permissions]\nwrite = [\"x\"]\n", "permissions.write"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }
}
