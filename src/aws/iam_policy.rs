//! `scalebot iam-policy`: the least-privilege IAM policy for one config.
//!
//! `iam_actions.rs` lists every AWS SDK operation this folder calls, with
//! the IAM action it needs, what that action can be scoped to, and the
//! further actions AWS checks when it is called. The policy grants
//! exactly those actions, on the functions, database, cache group and
//! region the config names; `"*"` only for the actions that have no
//! resource-level permissions. A test (`tests/api/iam.rs`) reads this
//! folder's sources and checks that every call it finds is granted and
//! nothing else is.
//!
//! A function, database or cache group typed in chat but not in the config
//! is then refused by AWS, and the bot says which action was denied: add
//! it to the config and generate the policy again.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::iam_actions::{Needs, OPERATIONS, SERVICE_LINKED_ROLES, Scope};
use crate::config::Settings;

use Scope::*;

/// An IAM policy document, serialised in the order people write it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: &'static str,
    pub effect: &'static str,
    pub action: Vec<&'static str>,
    pub resource: Resource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<BTreeMap<&'static str, BTreeMap<&'static str, Vec<&'static str>>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// `"*"`.
    All(&'static str),
    Arns(Vec<String>),
}

/// The policy for `settings`, and what was left out and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub document: PolicyDocument,
    pub notes: Vec<String>,
}

/// The policy for `settings` in `account` (`"*"`: any account, for a
/// policy written before the account is known).
pub fn generate(settings: &Settings, account: &str) -> Generated {
    let arns = Arns::new(settings, account);
    let mut notes = Vec::new();
    let proxy = &settings.rds_proxy;
    let proxy_ready =
        !proxy.secret_arn.is_empty() && !proxy.role_arn.is_empty() && !proxy.subnet_ids.is_empty();
    let mut by_scope: BTreeMap<Scope, BTreeSet<&'static str>> = BTreeMap::new();
    for o in OPERATIONS {
        if o.needs == Needs::ProxySettings && !proxy_ready {
            continue;
        }
        let implied = o.implies.iter().map(|i| (i.action, i.scopes));
        for (action, scopes) in std::iter::once((o.action, o.scopes)).chain(implied) {
            for scope in scopes {
                by_scope.entry(*scope).or_default().insert(action);
            }
        }
    }
    if !proxy_ready {
        notes.push(
            "rds:CreateDBProxy, rds:RegisterDBProxyTargets and iam:PassRole are left out: \
             `/scale rds proxy` needs rds_proxy.secret_arn, role_arn and subnet_ids in the config"
                .into(),
        );
    }
    let mut statement = Vec::new();
    for (scope, actions) in by_scope {
        let resources = arns.of(scope);
        if resources.is_empty() {
            notes.push(format!(
                "{} left out: {}",
                actions.iter().copied().collect::<Vec<_>>().join(", "),
                arns.missing(scope)
            ));
            continue;
        }
        statement.push(Statement {
            sid: sid(scope),
            effect: "Allow",
            action: actions.into_iter().collect(),
            resource: if scope == Any {
                Resource::All("*")
            } else {
                Resource::Arns(resources)
            },
            condition: condition(scope),
        });
    }
    Generated {
        document: PolicyDocument {
            version: "2012-10-17",
            statement,
        },
        notes,
    }
}

fn sid(scope: Scope) -> &'static str {
    match scope {
        Any => "NoResourceLevelPermissions",
        Alarms => "AlarmsOfTheRegion",
        Functions => "ConfiguredFunctions",
        ScalableTargets => "ScalableTargetsOfTheRegion",
        ServiceLinkedRoles => "AutoScalingServiceLinkedRoles",
        Databases => "ConfiguredDatabases",
        DbProxies => "DatabaseProxiesOfTheRegion",
        ProxyTargetGroups => "ProxyTargetGroupsOfTheRegion",
        ProxyRole => "PassTheProxyRoleToRds",
        CacheGroups => "ConfiguredCacheGroup",
        ParameterGroups => "ParameterGroupsOfTheRegion",
        PageTopics => "PagingTopics",
    }
}

/// Narrows a grant that its resources alone cannot.
fn condition(
    scope: Scope,
) -> Option<BTreeMap<&'static str, BTreeMap<&'static str, Vec<&'static str>>>> {
    let (key, values) = match scope {
        // Only these roles, and only for Application Auto Scaling.
        ServiceLinkedRoles => (
            "iam:AWSServiceName",
            SERVICE_LINKED_ROLES.iter().map(|(p, _)| *p).collect(),
        ),
        // The proxy role goes to RDS and nowhere else.
        ProxyRole => ("iam:PassedToService", vec!["rds.amazonaws.com"]),
        _ => return None,
    };
    Some(BTreeMap::from([(
        "StringEquals",
        BTreeMap::from([(key, values)]),
    )]))
}

/// ARNs in the config's partition, region and the given account.
struct Arns<'a> {
    settings: &'a Settings,
    partition: &'static str,
    region: &'a str,
    account: &'a str,
}

impl<'a> Arns<'a> {
    fn new(settings: &'a Settings, account: &'a str) -> Self {
        let region = settings.aws.region.as_str();
        Self {
            settings,
            partition: partition(region),
            region,
            account,
        }
    }

    fn arn(&self, service: &str, region: &str, resource: &str) -> String {
        let (p, a) = (self.partition, self.account);
        format!("arn:{p}:{service}:{region}:{a}:{resource}")
    }

    fn of(&self, scope: Scope) -> Vec<String> {
        let s = self.settings;
        let r = self.region;
        match scope {
            Any => vec!["*".into()],
            Alarms => vec![self.arn("cloudwatch", r, "alarm:*")],
            Functions => function_names(s)
                .into_iter()
                .flat_map(|f| {
                    [
                        self.arn("lambda", r, &format!("function:{f}")),
                        self.arn("lambda", r, &format!("function:{f}:*")),
                    ]
                })
                .collect(),
            ScalableTargets => vec![self.arn("application-autoscaling", r, "scalable-target/*")],
            ServiceLinkedRoles => SERVICE_LINKED_ROLES
                .iter()
                .map(|(principal, role)| {
                    self.arn(
                        "iam",
                        "",
                        &format!("role/aws-service-role/{principal}/{role}"),
                    )
                })
                .collect(),
            Databases => [&s.runbook.database, &s.reports.database]
                .into_iter()
                .filter(|d| !d.is_empty())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|d| self.arn("rds", r, &format!("db:{d}")))
                .collect(),
            DbProxies => vec![self.arn("rds", r, "db-proxy:*")],
            ProxyTargetGroups => vec![self.arn("rds", r, "target-group:*")],
            ParameterGroups => vec![self.arn("rds", r, "pg:*")],
            PageTopics => s
                .escalation
                .levels
                .iter()
                .flat_map(|l| l.sns_topics.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            ProxyRole => vec![s.rds_proxy.role_arn.clone()]
                .into_iter()
                .filter(|a| !a.is_empty())
                .collect(),
            CacheGroups => vec![s.runbook.cache_group.clone()]
                .into_iter()
                .filter(|g| !g.is_empty())
                .map(|g| self.arn("elasticache", r, &format!("replicationgroup:{g}")))
                .collect(),
        }
    }

    /// Why a scope has no resources in this config.
    fn missing(&self, scope: Scope) -> &'static str {
        match scope {
            Functions => "the config names no function (runbook.functions, [functions.<name>])",
            Databases => "the config names no database (runbook.database)",
            CacheGroups => "the config names no cache group (runbook.cache_group)",
            ProxyRole => "rds_proxy.role_arn is empty",
            PageTopics => "no escalation level pages an SNS topic (escalation.levels[].sns_topics)",
            _ => "nothing to grant them on",
        }
    }
}

/// Every function the config names: the runbook's, those with guardrails
/// of their own, and the reports'.
fn function_names(s: &Settings) -> BTreeSet<&str> {
    s.runbook
        .functions
        .iter()
        .chain(s.functions.keys())
        .chain(s.reports.functions.iter())
        .map(|f| f.as_str())
        .collect()
}

/// The ARN partition of a region.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FunctionName;
    use crate::settings_file::SettingsFile;

    fn settings() -> Settings {
        SettingsFile::default().services()
    }

    fn statement<'a>(g: &'a Generated, sid: &str) -> &'a Statement {
        g.document
            .statement
            .iter()
            .find(|s| s.sid == sid)
            .unwrap_or_else(|| panic!("no statement {sid}: {:#?}", g.document))
    }

    fn arns(s: &Statement) -> Vec<String> {
        match &s.resource {
            Resource::Arns(a) => a.clone(),
            Resource::All(_) => panic!("{} is on *", s.sid),
        }
    }

    #[test]
    fn functions_are_the_configured_ones_with_their_qualifiers() {
        let mut s = settings();
        s.aws.region = "eu-west-1".into();
        s.functions.insert(
            FunctionName::parse("extra-fn").expect("name"),
            Default::default(),
        );
        let g = generate(&s, "123456789012");
        let fns = arns(statement(&g, "ConfiguredFunctions"));
        assert!(fns.contains(&"arn:aws:lambda:eu-west-1:123456789012:function:extra-fn".into()));
        assert!(
            fns.contains(&"arn:aws:lambda:eu-west-1:123456789012:function:persona-api:*".into())
        );
        assert_eq!(fns.len(), 2 * (s.runbook.functions.len() + 1));
        assert!(
            fns.iter().all(|a| !a.ends_with("function:*")),
            "never every function: {fns:?}"
        );
    }

    #[test]
    fn only_actions_without_resource_level_permissions_are_on_star() {
        let g = generate(&settings(), "*");
        let star = statement(&g, "NoResourceLevelPermissions");
        assert_eq!(star.resource, Resource::All("*"));
        assert_eq!(
            star.action,
            [
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingActivities",
                "application-autoscaling:DescribeScalingPolicies",
                "ce:GetCostAndUsage",
                "cloudwatch:GetMetricData",
                "lambda:GetAccountSettings",
            ]
        );
        for s in &g.document.statement {
            if s.sid != star.sid {
                assert!(arns(s).iter().all(|a| a.starts_with("arn:aws:")), "{s:?}");
            }
        }
    }

    #[test]
    fn the_proxy_actions_come_with_the_proxy_settings() {
        let g = generate(&settings(), "*");
        let all: Vec<&str> = g
            .document
            .statement
            .iter()
            .flat_map(|s| s.action.iter().copied())
            .collect();
        for a in [
            "rds:CreateDBProxy",
            "rds:RegisterDBProxyTargets",
            "iam:PassRole",
        ] {
            assert!(!all.contains(&a), "{a} without rds_proxy settings");
        }
        assert!(
            g.notes
                .iter()
                .any(|n| n.contains("rds_proxy.secret_arn, role_arn"))
        );

        let mut s = settings();
        s.rds_proxy.secret_arn = "arn:aws:secretsmanager:eu-central-1:1:secret:db".into();
        s.rds_proxy.role_arn = "arn:aws:iam::123456789012:role/proxy".into();
        s.rds_proxy.subnet_ids = vec!["subnet-1".into()];
        let g = generate(&s, "*");
        let pass = statement(&g, "PassTheProxyRoleToRds");
        assert_eq!(pass.action, ["iam:PassRole"]);
        assert_eq!(arns(pass), ["arn:aws:iam::123456789012:role/proxy"]);
        let cond = pass.condition.as_ref().expect("a condition");
        assert_eq!(
            cond["StringEquals"]["iam:PassedToService"],
            ["rds.amazonaws.com"]
        );
        let db = statement(&g, "ConfiguredDatabases");
        assert!(db.action.contains(&"rds:RegisterDBProxyTargets"));
        // Only what the config leaves out is noted: it pages no SNS topic.
        assert!(
            g.notes
                .iter()
                .all(|n| n.starts_with("sns:Publish left out")),
            "{:?}",
            g.notes
        );
    }

    #[test]
    fn publish_is_granted_on_the_topics_the_levels_page_only() {
        let mut s = settings();
        s.escalation.levels[2].sns_topics = vec!["arn:aws:sns:eu-central-1:1:oncall".into()];
        s.escalation.levels[3].sns_topics = vec![
            "arn:aws:sns:eu-central-1:1:emergency".into(),
            "arn:aws:sns:eu-central-1:1:oncall".into(),
        ];
        let g = generate(&s, "1");
        let paging = statement(&g, "PagingTopics");
        assert_eq!(paging.action, ["sns:Publish"]);
        assert_eq!(
            arns(paging),
            [
                "arn:aws:sns:eu-central-1:1:emergency",
                "arn:aws:sns:eu-central-1:1:oncall"
            ]
        );
    }

    #[test]
    fn china_and_govcloud_have_their_partitions() {
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-central-1"), "aws");
        let mut s = settings();
        s.aws.region = "cn-north-1".into();
        let g = generate(&s, "*");
        assert!(
            arns(statement(&g, "ConfiguredCacheGroup"))[0]
                .starts_with("arn:aws-cn:elasticache:cn-north-1:*:replicationgroup:")
        );
        assert!(
            arns(statement(&g, "AutoScalingServiceLinkedRoles"))
                .iter()
                .all(|a| a.starts_with("arn:aws-cn:iam::*:role/aws-service-role/"))
        );
    }

    #[test]
    fn an_empty_database_setting_grants_nothing_on_databases() {
        let mut s = settings();
        s.runbook.database.clear();
        let g = generate(&s, "*");
        assert!(
            g.document
                .statement
                .iter()
                .all(|st| st.sid != "ConfiguredDatabases")
        );
        assert!(g.notes.iter().any(|n| n.contains("runbook.database")));
    }
}
