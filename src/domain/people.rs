//! People behind chat identities. One person may click from a Slack user,
//! a Discord user and the web chat (and from more than one account on a
//! platform); `[people]` in the config says which identities are whose, so
//! that a rule about people (two approvals from two people, the requester
//! not among them) cannot be met by one person with two accounts.

use std::collections::BTreeMap;
use std::fmt;

use super::DomainError;

/// Whoever stands behind an identity: the person the config names, or,
/// for an identity the config does not map, that identity on its platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Person(String);

impl Person {
    /// The form the store keeps (`person:alice`, `slack:U123`); the two
    /// kinds cannot collide, since a platform name is no `person`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Person {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identities (platform, user id) by the person they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct People {
    by_identity: BTreeMap<(String, String), String>,
}

impl People {
    /// From (person, platform, user id) triples; an identity given to two
    /// people is refused, since it could then stand for either.
    pub fn new<I, S>(identities: I) -> Result<Self, DomainError>
    where
        I: IntoIterator<Item = (S, S, S)>,
        S: Into<String>,
    {
        let mut by_identity = BTreeMap::new();
        for (person, platform, user) in identities {
            let (person, platform, user) = (person.into(), platform.into(), user.into());
            if person.trim().is_empty() || user.trim().is_empty() {
                return Err(DomainError(
                    "a person and each of their ids must have a name".into(),
                ));
            }
            let key = (platform, user);
            match by_identity.get(&key) {
                Some(other) if *other != person => {
                    return Err(DomainError(format!(
                        "the {} id `{}` is listed for both `{other}` and `{person}`",
                        key.0, key.1
                    )));
                }
                _ => {
                    by_identity.insert(key, person);
                }
            }
        }
        Ok(Self { by_identity })
    }

    /// The person behind `user` on `platform` (`slack`, `discord`, `web`:
    /// a request's `via`).
    pub fn person(&self, platform: &str, user: &str) -> Person {
        match self
            .by_identity
            .get(&(platform.to_owned(), user.to_owned()))
        {
            Some(name) => Person(format!("person:{name}")),
            None => Person(format!("{platform}:{user}")),
        }
    }

    /// Whether two identities are one person.
    pub fn same(&self, a: (&str, &str), b: (&str, &str)) -> bool {
        self.person(a.0, a.1) == self.person(b.0, b.1)
    }

    /// Each person's identities as `platform id`, for `scalebot check`.
    pub fn by_person(&self) -> BTreeMap<&str, Vec<String>> {
        let mut out: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((platform, user), person) in &self.by_identity {
            out.entry(person.as_str())
                .or_default()
                .push(format!("{platform} {user}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice_and_bob() -> People {
        People::new([
            ("alice", "slack", "U0ALICE"),
            ("alice", "slack", "W0ALICE"),
            ("alice", "discord", "4567"),
            ("bob", "slack", "U0BOB"),
        ])
        .expect("valid")
    }

    /// How many people a list of approvals is.
    fn count(people: &People, identities: &[(&str, &str)]) -> usize {
        identities
            .iter()
            .map(|(platform, user)| people.person(platform, user))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    #[test]
    fn a_slack_and_a_discord_user_of_one_person_count_once() {
        let people = alice_and_bob();
        assert_eq!(
            count(&people, &[("slack", "U0ALICE"), ("discord", "4567")]),
            1,
            "alice twice is one approval"
        );
        assert_eq!(
            count(&people, &[("slack", "U0ALICE"), ("slack", "W0ALICE")]),
            1
        );
        assert_eq!(
            count(&people, &[("discord", "4567"), ("slack", "U0BOB")]),
            2
        );
        // Unmapped identities are themselves; the same id on two platforms
        // is two identities.
        assert_eq!(
            count(&people, &[("slack", "U0CAROL"), ("discord", "U0CAROL")]),
            2
        );
        assert_eq!(people.person("slack", "U0ALICE").as_str(), "person:alice");
        assert_eq!(people.person("slack", "U0CAROL").as_str(), "slack:U0CAROL");
    }

    #[test]
    fn the_requester_is_excluded_whatever_the_identity() {
        let people = alice_and_bob();
        let requester = ("slack", "U0ALICE");
        assert!(people.same(("discord", "4567"), requester));
        assert!(people.same(("slack", "W0ALICE"), requester));
        assert!(!people.same(("slack", "U0BOB"), requester));
        // The id alone does not make a person: alice's Discord id typed on
        // Slack is someone else.
        assert!(!people.same(("slack", "4567"), requester));
        assert!(People::default().same(("slack", "U1"), ("slack", "U1")));
        assert!(!People::default().same(("slack", "U1"), ("discord", "U1")));
    }

    #[test]
    fn one_identity_cannot_be_two_people() {
        let err = People::new([("alice", "discord", "4567"), ("bob", "discord", "4567")])
            .expect_err("ambiguous");
        assert!(
            err.0
                .contains("`4567` is listed for both `alice` and `bob`"),
            "{err}"
        );
        assert!(People::new([("alice", "slack", " ")]).is_err());
        // Listed twice for the same person is harmless.
        assert!(People::new([("alice", "slack", "U1"), ("alice", "slack", "U1")]).is_ok());
        let people = alice_and_bob();
        let by_person = people.by_person();
        assert_eq!(
            by_person["alice"],
            ["discord 4567", "slack U0ALICE", "slack W0ALICE"]
        );
        assert_eq!(by_person["bob"], ["slack U0BOB"]);
    }
}
