//! The AWS operations `aws/` calls, for `iam_policy.rs`: each SDK call
//! with the IAM action it needs, what that action can be scoped to, and
//! what else AWS checks when it is called. `tests/api/iam.rs` reads this
//! folder's sources and checks that every call it finds is here, and
//! nothing else is.

/// What an action's `Resource` can be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    /// The action has no resource-level permissions: `"*"`.
    Any,
    /// CloudWatch alarms of the region: the bot reads the ones its
    /// incidents name, and the target-tracking alarms that Application
    /// Auto Scaling creates get names chosen by AWS.
    Alarms,
    /// The configured Lambda functions, with their versions and aliases.
    Functions,
    /// Application Auto Scaling's targets of the region (their ARNs carry
    /// a random id, not the resource's name).
    ScalableTargets,
    /// The two roles Application Auto Scaling creates the first time a
    /// target of its kind is registered.
    ServiceLinkedRoles,
    /// The configured RDS instances.
    Databases,
    /// RDS proxies of the region (named by id, which is unknown before
    /// the proxy exists).
    DbProxies,
    /// Their target groups, named by id as well.
    ProxyTargetGroups,
    /// The role the proxy reads its secret with (`rds_proxy.role_arn`).
    ProxyRole,
    /// The configured ElastiCache replication group.
    CacheGroups,
    /// DB parameter groups of the region (which one an instance uses is
    /// known only once it is described).
    ParameterGroups,
    /// The SNS topics the escalation levels page (`sns_topics`).
    PageTopics,
}

/// When the bot can call an operation at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    Always,
    /// `/scale rds proxy` refuses before any AWS call unless
    /// `rds_proxy.secret_arn`, `role_arn` and `subnet_ids` are set.
    ProxySettings,
}

/// An action AWS checks when another is called.
pub(crate) struct Implied {
    pub(crate) action: &'static str,
    pub(crate) scopes: &'static [Scope],
}

/// One SDK operation of the `Cloud` adapter.
pub struct Operation {
    /// The client it is called on (`self.lambda`).
    pub client: &'static str,
    /// The SDK's fluent builder (`.get_function_concurrency()`).
    pub call: &'static str,
    /// The IAM action it needs; `aws/` names it when AWS denies the call.
    pub action: &'static str,
    pub(crate) scopes: &'static [Scope],
    pub(crate) implies: &'static [Implied],
    pub(crate) needs: Needs,
}

const fn op(
    client: &'static str,
    call: &'static str,
    action: &'static str,
    scopes: &'static [Scope],
) -> Operation {
    Operation {
        client,
        call,
        action,
        scopes,
        implies: &[],
        needs: Needs::Always,
    }
}

use Scope::*;

/// Application Auto Scaling checks, with the caller's credentials, that the
/// caller may do what scaling the target will do (its guide: "Permissions
/// validation for API calls on target resources", and the permissions it
/// lists per target service): for Lambda provisioned concurrency and
/// ElastiCache replicas, the target service's actions and the alarm
/// actions; the first registration of a kind also creates its
/// service-linked role.
const SCALING_CHECKS: &[Implied] = &[
    Implied {
        action: "lambda:PutProvisionedConcurrencyConfig",
        scopes: &[Functions],
    },
    Implied {
        action: "lambda:GetProvisionedConcurrencyConfig",
        scopes: &[Functions],
    },
    Implied {
        action: "lambda:DeleteProvisionedConcurrencyConfig",
        scopes: &[Functions],
    },
    Implied {
        action: "elasticache:DescribeReplicationGroups",
        scopes: &[CacheGroups],
    },
    Implied {
        action: "elasticache:IncreaseReplicaCount",
        scopes: &[CacheGroups],
    },
    Implied {
        action: "elasticache:DecreaseReplicaCount",
        scopes: &[CacheGroups],
    },
    Implied {
        action: "cloudwatch:DescribeAlarms",
        scopes: &[Alarms],
    },
    Implied {
        action: "cloudwatch:PutMetricAlarm",
        scopes: &[Alarms],
    },
    Implied {
        action: "cloudwatch:DeleteAlarms",
        scopes: &[Alarms],
    },
    Implied {
        action: "iam:CreateServiceLinkedRole",
        scopes: &[ServiceLinkedRoles],
    },
];

/// Every operation `aws/` calls.
pub const OPERATIONS: &[Operation] = &[
    op(
        "cloudwatch",
        "get_metric_data",
        "cloudwatch:GetMetricData",
        &[Any],
    ),
    op("sns", "publish", "sns:Publish", &[PageTopics]),
    op(
        "cloudwatch",
        "describe_alarms",
        "cloudwatch:DescribeAlarms",
        &[Alarms],
    ),
    op(
        "lambda",
        "get_function_concurrency",
        "lambda:GetFunctionConcurrency",
        &[Functions],
    ),
    op(
        "lambda",
        "put_function_concurrency",
        "lambda:PutFunctionConcurrency",
        &[Functions],
    ),
    op(
        "lambda",
        "delete_function_concurrency",
        "lambda:DeleteFunctionConcurrency",
        &[Functions],
    ),
    op(
        "lambda",
        "get_account_settings",
        "lambda:GetAccountSettings",
        &[Any],
    ),
    op(
        "lambda",
        "list_provisioned_concurrency_configs",
        "lambda:ListProvisionedConcurrencyConfigs",
        &[Functions],
    ),
    op(
        "lambda",
        "put_provisioned_concurrency_config",
        "lambda:PutProvisionedConcurrencyConfig",
        &[Functions],
    ),
    op(
        "lambda",
        "delete_provisioned_concurrency_config",
        "lambda:DeleteProvisionedConcurrencyConfig",
        &[Functions],
    ),
    op(
        "lambda",
        "get_function_configuration",
        "lambda:GetFunctionConfiguration",
        &[Functions],
    ),
    op(
        "lambda",
        "update_function_configuration",
        "lambda:UpdateFunctionConfiguration",
        &[Functions],
    ),
    op(
        "autoscaling",
        "describe_scalable_targets",
        "application-autoscaling:DescribeScalableTargets",
        &[Any],
    ),
    Operation {
        implies: SCALING_CHECKS,
        ..op(
            "autoscaling",
            "register_scalable_target",
            "application-autoscaling:RegisterScalableTarget",
            &[ScalableTargets],
        )
    },
    op(
        "autoscaling",
        "describe_scaling_policies",
        "application-autoscaling:DescribeScalingPolicies",
        &[Any],
    ),
    Operation {
        implies: SCALING_CHECKS,
        ..op(
            "autoscaling",
            "put_scaling_policy",
            "application-autoscaling:PutScalingPolicy",
            &[ScalableTargets],
        )
    },
    op(
        "autoscaling",
        "describe_scaling_activities",
        "application-autoscaling:DescribeScalingActivities",
        &[Any],
    ),
    op(
        "costexplorer",
        "get_cost_and_usage",
        "ce:GetCostAndUsage",
        &[Any],
    ),
    op(
        "rds",
        "describe_db_instances",
        "rds:DescribeDBInstances",
        &[Databases],
    ),
    op(
        "rds",
        "describe_db_proxies",
        "rds:DescribeDBProxies",
        &[DbProxies],
    ),
    op(
        "rds",
        "describe_db_proxy_targets",
        "rds:DescribeDBProxyTargets",
        &[DbProxies, ProxyTargetGroups],
    ),
    op(
        "rds",
        "describe_db_parameters",
        "rds:DescribeDBParameters",
        &[ParameterGroups],
    ),
    Operation {
        // The proxy is created with `rds_proxy.role_arn`, which the caller
        // must be allowed to hand to RDS.
        implies: &[Implied {
            action: "iam:PassRole",
            scopes: &[ProxyRole],
        }],
        needs: Needs::ProxySettings,
        ..op("rds", "create_db_proxy", "rds:CreateDBProxy", &[DbProxies])
    },
    Operation {
        needs: Needs::ProxySettings,
        // The proxy, its target group and the instance registered in it.
        ..op(
            "rds",
            "register_db_proxy_targets",
            "rds:RegisterDBProxyTargets",
            &[DbProxies, ProxyTargetGroups, Databases],
        )
    },
    op(
        "elasticache",
        "describe_replication_groups",
        "elasticache:DescribeReplicationGroups",
        &[CacheGroups],
    ),
];

/// The roles Application Auto Scaling creates, by service principal.
pub(crate) const SERVICE_LINKED_ROLES: &[(&str, &str)] = &[
    (
        "lambda.application-autoscaling.amazonaws.com",
        "AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency",
    ),
    (
        "elasticache.application-autoscaling.amazonaws.com",
        "AWSServiceRoleForApplicationAutoScaling_ElastiCacheRG",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The table agrees with itself: each call is the SDK's snake_case of
    /// its action (IAM compares actions without regard to case).
    #[test]
    fn each_call_is_its_action_in_snake_case() {
        for o in OPERATIONS {
            let prefix = match o.client {
                "autoscaling" => "application-autoscaling",
                "costexplorer" => "ce",
                other => other,
            };
            let pascal: String = o
                .call
                .split('_')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect();
            assert_eq!(
                format!("{prefix}:{pascal}").to_lowercase(),
                o.action.to_lowercase(),
                "{}.{}",
                o.client,
                o.call
            );
        }
    }
}
