//! `[people]`: which chat identities are one person.
//!
//! ```toml
//! [people.alice]
//! slack = "U0123ALICE"            # or a list: ["U0123ALICE", "W0456ALICE"]
//! discord = "400000000000000001"
//! web = "alice"                   # the demo's web chat
//! ```
//!
//! Two approvals must come from two people, and the requester of a plan
//! that needs two may not approve it from another account: a person
//! listed here counts once whichever identity they click from. An identity
//! not listed is a person of its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::domain::people::People;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identities {
    #[serde(default)]
    slack: OneOrMany,
    #[serde(default)]
    discord: OneOrMany,
    #[serde(default)]
    web: OneOrMany,
}

/// A single id, or a list of them.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(id) => vec![id],
            OneOrMany::Many(ids) => ids,
        }
    }
}

/// `[people]` into [`People`], refusing what cannot name a person: a
/// Slack user group (`S…`) or a Discord role (`&…`), or one identity for
/// two people.
pub fn deserialize_people<'de, D: Deserializer<'de>>(d: D) -> Result<People, D::Error> {
    let table = BTreeMap::<String, Identities>::deserialize(d)?;
    let mut triples = Vec::new();
    for (person, ids) in table {
        for (platform, list) in [
            ("slack", ids.slack),
            ("discord", ids.discord),
            ("web", ids.web),
        ] {
            for id in list.into_vec() {
                if let Some(why) = not_a_person(platform, &id) {
                    return Err(serde::de::Error::custom(format!(
                        "`{person}`: {platform} `{id}` {why}"
                    )));
                }
                triples.push((person.clone(), platform.to_owned(), id));
            }
        }
    }
    People::new(triples).map_err(serde::de::Error::custom)
}

fn not_a_person(platform: &str, id: &str) -> Option<&'static str> {
    match platform {
        "slack" if !(id.starts_with('U') || id.starts_with('W')) => {
            Some("is no Slack user id (U… or W…; a user group S… is not a person)")
        }
        "discord" if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) => {
            Some("is no Discord user id (digits; a role &… is not a person)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        #[serde(deserialize_with = "deserialize_people")]
        people: People,
    }

    fn parse(text: &str) -> Result<People, crate::config::ConfigError> {
        crate::config::parse::<File>(Path::new("x.toml"), text).map(|f| f.people)
    }

    #[test]
    fn one_id_or_a_list_per_platform() {
        let p = parse(
            "[people.alice]\nslack = [\"U0ALICE\", \"W0ALICE\"]\ndiscord = \"4567\"\n\
             [people.bob]\nweb = \"bob\"\n",
        )
        .expect("valid");
        assert!(p.same(("discord", "4567"), ("slack", "W0ALICE")));
        assert_eq!(p.person("web", "bob").as_str(), "person:bob");
        assert_eq!(parse("").expect("none"), People::default());
    }

    #[test]
    fn groups_roles_and_shared_ids_are_refused_by_key() {
        for (text, expected) in [
            (
                "[people.alice]\nslack = \"S0OPS\"\n",
                "`alice`: slack `S0OPS` is no Slack user id",
            ),
            (
                "[people.alice]\ndiscord = \"&123\"\n",
                "`alice`: discord `&123` is no Discord user id",
            ),
            (
                "[people.alice]\ndiscord = \"1\"\n[people.bob]\ndiscord = \"1\"\n",
                "`1` is listed for both `alice` and `bob`",
            ),
            ("[people.alice]\nteams = \"x\"\n", "unknown field `teams`"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains("key `people"), "{err}");
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
