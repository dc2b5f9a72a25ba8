//! Who may do what: the config's `[roles]` (people, Slack user groups,
//! Discord roles), its `[permissions]` (incident control, reading) and a
//! command file's own `role`. The services ask here and nowhere else.

use std::time::Duration;

use crate::catalog::Invocation;
use crate::chat::Chat;
use crate::config::{PermissionSettings, Settings};

/// How long a command's ack may wait for user-group lookups: the platforms
/// want an answer within 3 s. A lookup that takes longer refuses (the
/// person may simply try again), it never lets the command through.
pub(crate) const LOOKUP_DEADLINE: Duration = Duration::from_secs(2);

/// Whether `user` holds `role`: listed by id, or a member of a listed
/// Slack user group (`S…`) or Discord role (`&<id>`).
pub(crate) async fn holds(settings: &Settings, chat: &dyn Chat, user: &str, role: &str) -> bool {
    let Some(members) = settings.roles.get(role) else {
        return false;
    };
    if members.iter().any(|m| m == user) {
        return true;
    }
    for group in members
        .iter()
        .filter(|m| m.starts_with('S') || m.starts_with('&'))
    {
        match chat.group_members(group).await {
            Ok(users) if users.iter().any(|u| u == user) => return true,
            Ok(_) => {}
            Err(e) => tracing::warn!(group, error = %e, "user group lookup failed"),
        }
    }
    false
}

/// What an action needs: membership of any of `roles`, to do `what`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    pub roles: Vec<String>,
    /// What the person tried, as the refusal says it ("run `/scale x`").
    pub what: String,
    /// Whether it would have changed something (the refusal then says
    /// that nothing was).
    pub changes: bool,
}

impl Need {
    /// Acknowledging, escalating, resolving, keeping open and annotating
    /// incidents, by command or button.
    pub(crate) fn incident_control(permissions: &PermissionSettings) -> Self {
        Self {
            roles: permissions.incidents.clone(),
            what: "acknowledge, escalate, resolve, keep open or annotate incidents".into(),
            changes: true,
        }
    }

    /// Running `inv` at all: its file's `role`, else the reading roles;
    /// `None` when anyone may.
    pub(crate) fn command(permissions: &PermissionSettings, inv: &Invocation) -> Option<Self> {
        let roles = match (&inv.spec.role, &permissions.read) {
            (Some(role), _) => vec![role.clone()],
            (None, Some(read)) => read.clone(),
            (None, None) => return None,
        };
        Some(Self {
            roles,
            what: format!("run `/scale {}`", inv.spec.name),
            changes: false,
        })
    }

    pub(crate) async fn met_by(&self, settings: &Settings, chat: &dyn Chat, user: &str) -> bool {
        for role in &self.roles {
            if holds(settings, chat, user, role).await {
                return true;
            }
        }
        false
    }

    /// The sentence only the refused person sees.
    pub(crate) fn refusal(&self) -> String {
        let roles: Vec<String> = self
            .roles
            .iter()
            .map(|r| format!("in role `{r}`"))
            .collect();
        let suffix = if self.changes {
            " Nothing was changed."
        } else {
            ""
        };
        format!(
            "🚫 Only people {} can {}.{suffix}",
            roles.join(" or "),
            self.what
        )
    }

    /// The audit row's detail.
    pub(crate) fn detail(&self) -> String {
        format!("not in role {}", self.roles.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::CommandSpec;

    fn permissions(read: Option<Vec<&str>>) -> PermissionSettings {
        PermissionSettings {
            incidents: vec!["responders".into(), "operators".into()],
            read: read.map(|r| r.into_iter().map(String::from).collect()),
        }
    }

    fn invocation(role: Option<&str>) -> Invocation {
        let spec: CommandSpec = toml::from_str(&format!(
            "name = \"look\"\nsummary = \"s\"\naction = \"throttles\"\n{}",
            role.map(|r| format!("role = \"{r}\"\n"))
                .unwrap_or_default()
        ))
        .expect("a spec");
        Invocation {
            spec: Arc::new(spec),
            args: Default::default(),
        }
    }

    #[test]
    fn reading_is_open_unless_restricted_and_a_file_role_wins() {
        assert_eq!(Need::command(&permissions(None), &invocation(None)), None);
        let need = Need::command(&permissions(Some(vec!["viewers"])), &invocation(None))
            .expect("restricted");
        assert_eq!(need.roles, ["viewers"]);
        assert_eq!(
            need.refusal(),
            "🚫 Only people in role `viewers` can run `/scale look`."
        );
        let need =
            Need::command(&permissions(None), &invocation(Some("auditors"))).expect("its own");
        assert_eq!(need.roles, ["auditors"]);
    }

    #[test]
    fn the_incident_refusal_names_every_role() {
        let need = Need::incident_control(&permissions(None));
        assert_eq!(
            need.refusal(),
            "🚫 Only people in role `responders` or in role `operators` can acknowledge, \
             escalate, resolve, keep open or annotate incidents. Nothing was changed."
        );
        assert_eq!(need.detail(), "not in role responders or operators");
    }
}
