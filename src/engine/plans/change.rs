//! A plan: the changes a command would make, each with the value read from
//! AWS when the plan was made. The same changes are read again just before
//! they run (drift), applied one by one, and inverted for `/scale undo`.

use serde::{Deserialize, Serialize};

use crate::cloud::{Cloud, CloudError, NewDbProxy, ScalableTarget, ScalingPolicy};
use crate::domain::FunctionName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Reserved concurrency; `None` means unreserved.
    Reserved {
        function: String,
        from: Option<i32>,
        to: Option<i32>,
    },
    /// Provisioned concurrency on a qualifier; `None` means no config.
    Provisioned {
        function: String,
        qualifier: String,
        from: Option<i32>,
        to: Option<i32>,
    },
    /// A scaling policy, created or replaced.
    Policy {
        from: Option<Box<ScalingPolicy>>,
        to: Box<ScalingPolicy>,
    },
    /// A scalable target's min and max.
    Target {
        from: Option<Box<ScalableTarget>>,
        to: Box<ScalableTarget>,
    },
    /// New execution environments; the code is not touched.
    Restart { function: String },
    /// An RDS Proxy in front of an instance.
    DbProxy { instance: String, proxy: NewDbProxy },
}

fn show(v: Option<i32>, none: &str) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| none.to_owned())
}

fn policy_show(p: Option<&ScalingPolicy>) -> String {
    match p {
        None => "no policy".into(),
        Some(p) => match p.target_value {
            Some(v) => format!("target {v}"),
            None => p.policy_type.clone(),
        },
    }
}

fn fname(raw: &str) -> Result<FunctionName, CloudError> {
    FunctionName::parse(raw).map_err(|e| CloudError::Rejected {
        action: "plan".into(),
        message: e.0,
    })
}

impl Change {
    /// What is changed, from what, to what.
    pub fn describe(&self) -> (String, String, String) {
        match self {
            Change::Reserved { function, from, to } => (
                format!("`{function}` reserved concurrency"),
                show(*from, "unreserved"),
                show(*to, "unreserved"),
            ),
            Change::Provisioned {
                function,
                qualifier,
                from,
                to,
            } => (
                format!("`{function}:{qualifier}` provisioned concurrency"),
                show(*from, "none"),
                show(*to, "none"),
            ),
            Change::Policy { from, to } => (
                format!("policy `{}` on `{}`", to.name, to.resource_id),
                policy_show(from.as_deref()),
                policy_show(Some(to)),
            ),
            Change::Target { from, to } => (
                format!("`{}` {} capacity", to.resource_id, to.dimension),
                from.as_ref()
                    .map(|t| format!("min {} / max {}", t.min, t.max))
                    .unwrap_or_else(|| "not registered".into()),
                format!("min {} / max {}", to.min, to.max),
            ),
            Change::Restart { function } => (
                format!("`{function}` execution environments"),
                "running".into(),
                "recycled (configuration marker, code untouched)".into(),
            ),
            Change::DbProxy { instance, proxy } => (
                format!("RDS Proxy for `{instance}`"),
                "none".into(),
                format!(
                    "`{}` ({}, TLS {})",
                    proxy.name,
                    proxy.engine_family,
                    if proxy.require_tls {
                        "required"
                    } else {
                        "optional"
                    }
                ),
            ),
        }
    }

    /// The function this change concerns, if any.
    pub fn function(&self) -> Option<&str> {
        match self {
            Change::Reserved { function, .. }
            | Change::Provisioned { function, .. }
            | Change::Restart { function } => Some(function),
            _ => None,
        }
    }

    /// The same change with `from` read from AWS now.
    pub async fn refresh(&self, cloud: &dyn Cloud) -> Result<Change, CloudError> {
        Ok(match self {
            Change::Reserved { function, to, .. } => Change::Reserved {
                function: function.clone(),
                from: cloud.reserved_concurrency(&fname(function)?).await?,
                to: *to,
            },
            Change::Provisioned {
                function,
                qualifier,
                to,
                ..
            } => Change::Provisioned {
                function: function.clone(),
                qualifier: qualifier.clone(),
                from: cloud
                    .provisioned_configs(&fname(function)?)
                    .await?
                    .into_iter()
                    .find(|c| &c.qualifier == qualifier)
                    .map(|c| c.requested),
                to: *to,
            },
            Change::Policy { to, .. } => Change::Policy {
                from: cloud
                    .scaling_policies(&to.namespace)
                    .await?
                    .into_iter()
                    .find(|p| p.name == to.name && p.resource_id == to.resource_id)
                    .map(Box::new),
                to: to.clone(),
            },
            Change::Target { to, .. } => Change::Target {
                from: cloud
                    .scalable_targets(&to.namespace)
                    .await?
                    .into_iter()
                    .find(|t| t.resource_id == to.resource_id && t.dimension == to.dimension)
                    .map(Box::new),
                to: to.clone(),
            },
            Change::Restart { .. } | Change::DbProxy { .. } => self.clone(),
        })
    }

    /// Whether AWS still holds what the plan showed.
    pub fn same_start(&self, now: &Change) -> bool {
        match (self, now) {
            (Change::Reserved { from: a, .. }, Change::Reserved { from: b, .. }) => a == b,
            (Change::Provisioned { from: a, .. }, Change::Provisioned { from: b, .. }) => a == b,
            (Change::Policy { from: a, .. }, Change::Policy { from: b, .. }) => {
                a.as_ref().map(|p| (p.target_value, &p.predefined_metric))
                    == b.as_ref().map(|p| (p.target_value, &p.predefined_metric))
            }
            (Change::Target { from: a, .. }, Change::Target { from: b, .. }) => {
                a.as_ref().map(|t| (t.min, t.max)) == b.as_ref().map(|t| (t.min, t.max))
            }
            _ => true,
        }
    }

    /// Whether `now` (this change refreshed from AWS) already holds the
    /// value this change sets; `false` when that cannot be read back (a
    /// restart, a new proxy).
    pub fn reached_by(&self, now: &Change) -> bool {
        match (self, now) {
            (Change::Reserved { to, .. }, Change::Reserved { from, .. }) => to == from,
            (Change::Provisioned { to, .. }, Change::Provisioned { from, .. }) => to == from,
            (Change::Policy { to, .. }, Change::Policy { from, .. }) => {
                from.as_ref().is_some_and(|p| {
                    (p.target_value, &p.predefined_metric)
                        == (to.target_value, &to.predefined_metric)
                })
            }
            (Change::Target { to, .. }, Change::Target { from, .. }) => from
                .as_ref()
                .is_some_and(|t| (t.min, t.max) == (to.min, to.max)),
            _ => false,
        }
    }

    /// Makes the change. Returns a short note for the thread.
    pub async fn apply(&self, cloud: &dyn Cloud) -> Result<String, CloudError> {
        match self {
            Change::Reserved { function, to, .. } => {
                let f = fname(function)?;
                match to {
                    Some(n) => cloud.put_reserved_concurrency(&f, *n).await?,
                    None => cloud.delete_reserved_concurrency(&f).await?,
                }
                Ok(format!(
                    "reserved concurrency of `{function}` is now {}",
                    show(*to, "unreserved")
                ))
            }
            Change::Provisioned {
                function,
                qualifier,
                to,
                ..
            } => {
                let f = fname(function)?;
                match to {
                    Some(n) => cloud.put_provisioned(&f, qualifier, *n).await?,
                    None => cloud.delete_provisioned(&f, qualifier).await?,
                }
                Ok(format!(
                    "provisioned concurrency of `{function}:{qualifier}` is now {}",
                    show(*to, "none")
                ))
            }
            Change::Policy { to, .. } => {
                cloud.put_scaling_policy(to).await?;
                Ok(format!("policy `{}` is {}", to.name, policy_show(Some(to))))
            }
            Change::Target { to, .. } => {
                cloud.register_scalable_target(to).await?;
                Ok(format!(
                    "`{}` is now min {} / max {}",
                    to.resource_id, to.min, to.max
                ))
            }
            Change::Restart { function } => {
                let out = cloud.restart_function(&fname(function)?).await?;
                Ok(format!(
                    "`{function}` gets fresh execution environments (marker {}); code unchanged ({})",
                    out.marker,
                    short_sha(&out.code_sha256_after)
                ))
            }
            Change::DbProxy { instance, proxy } => {
                cloud.create_db_proxy(proxy, instance).await?;
                Ok(format!(
                    "RDS Proxy `{}` created with `{instance}` as its target",
                    proxy.name
                ))
            }
        }
    }

    /// The change that puts back what this one changed, when there is one.
    pub fn inverse(&self) -> Option<Change> {
        match self {
            Change::Reserved { function, from, to } => Some(Change::Reserved {
                function: function.clone(),
                from: *to,
                to: *from,
            }),
            Change::Provisioned {
                function,
                qualifier,
                from,
                to,
            } => Some(Change::Provisioned {
                function: function.clone(),
                qualifier: qualifier.clone(),
                from: *to,
                to: *from,
            }),
            Change::Policy {
                from: Some(from),
                to,
            } => Some(Change::Policy {
                from: Some(to.clone()),
                to: from.clone(),
            }),
            Change::Target {
                from: Some(from),
                to,
            } => Some(Change::Target {
                from: Some(to.clone()),
                to: from.clone(),
            }),
            _ => None,
        }
    }
}

fn short_sha(s: &str) -> String {
    s.chars().take(12).collect()
}
