//! A Cloud that counts the AWS operations passed through it (to put each
//! report's call count beside the runbook script's), answers
//! `DescribeScalingActivities` from a list (moto 5.2.5 lacks it; the SDK
//! call itself is covered by the aws-smithy-mocks tests in
//! `src/cloud/aws/autoscaling.rs`), and can make chosen operations fail as
//! AWS would without the permission. Everything else goes to the real AWS
//! implementation on moto.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scalebot::cloud::*;
use scalebot::domain::FunctionName;

pub struct CountingCloud {
    inner: Arc<dyn Cloud>,
    calls: Mutex<BTreeMap<&'static str, usize>>,
    pub activities: Mutex<Vec<ScalingActivity>>,
    /// Operations (as counted) that fail with AccessDenied.
    pub denied: Mutex<Vec<&'static str>>,
}

impl CountingCloud {
    pub fn new(inner: Arc<dyn Cloud>) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
            activities: Mutex::new(Vec::new()),
            denied: Mutex::new(Vec::new()),
        }
    }

    /// Calls by operation since the last reset.
    pub fn calls(&self) -> BTreeMap<&'static str, usize> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn total(&self) -> usize {
        self.calls().values().sum()
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn count(&self, op: &'static str) -> Result<(), CloudError> {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default() += 1;
        if self
            .denied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&op)
        {
            return Err(CloudError::AccessDenied {
                action: op.to_owned(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Cloud for CountingCloud {
    async fn metric_data(&self, r: &MetricRequest) -> Result<Vec<Series>, CloudError> {
        self.count("cloudwatch:GetMetricData")?;
        self.inner.metric_data(r).await
    }
    async fn reserved_concurrency(&self, f: &FunctionName) -> Result<Option<i32>, CloudError> {
        self.count("lambda:GetFunctionConcurrency")?;
        self.inner.reserved_concurrency(f).await
    }
    async fn account_concurrency(&self) -> Result<AccountConcurrency, CloudError> {
        self.count("lambda:GetAccountSettings")?;
        self.inner.account_concurrency().await
    }
    async fn put_reserved_concurrency(&self, f: &FunctionName, v: i32) -> Result<(), CloudError> {
        self.count("lambda:PutFunctionConcurrency")?;
        self.inner.put_reserved_concurrency(f, v).await
    }
    async fn delete_reserved_concurrency(&self, f: &FunctionName) -> Result<(), CloudError> {
        self.count("lambda:DeleteFunctionConcurrency")?;
        self.inner.delete_reserved_concurrency(f).await
    }
    async fn provisioned_configs(
        &self,
        f: &FunctionName,
    ) -> Result<Vec<ProvisionedConfig>, CloudError> {
        self.count("lambda:ListProvisionedConcurrencyConfigs")?;
        self.inner.provisioned_configs(f).await
    }
    async fn put_provisioned(&self, f: &FunctionName, q: &str, v: i32) -> Result<(), CloudError> {
        self.count("lambda:PutProvisionedConcurrencyConfig")?;
        self.inner.put_provisioned(f, q, v).await
    }
    async fn delete_provisioned(&self, f: &FunctionName, q: &str) -> Result<(), CloudError> {
        self.count("lambda:DeleteProvisionedConcurrencyConfig")?;
        self.inner.delete_provisioned(f, q).await
    }
    async fn restart_function(&self, f: &FunctionName) -> Result<RestartOutcome, CloudError> {
        self.count("lambda:UpdateFunctionConfiguration")?;
        self.inner.restart_function(f).await
    }
    async fn scalable_targets(&self, ns: &str) -> Result<Vec<ScalableTarget>, CloudError> {
        self.count("application-autoscaling:DescribeScalableTargets")?;
        self.inner.scalable_targets(ns).await
    }
    async fn register_scalable_target(&self, t: &ScalableTarget) -> Result<(), CloudError> {
        self.count("application-autoscaling:RegisterScalableTarget")?;
        self.inner.register_scalable_target(t).await
    }
    async fn scaling_policies(&self, ns: &str) -> Result<Vec<ScalingPolicy>, CloudError> {
        self.count("application-autoscaling:DescribeScalingPolicies")?;
        self.inner.scaling_policies(ns).await
    }
    async fn put_scaling_policy(&self, p: &ScalingPolicy) -> Result<(), CloudError> {
        self.count("application-autoscaling:PutScalingPolicy")?;
        self.inner.put_scaling_policy(p).await
    }
    async fn scaling_activities(
        &self,
        _ns: &str,
        max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError> {
        self.count("application-autoscaling:DescribeScalingActivities")?;
        let all = self
            .activities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(all
            .into_iter()
            .take(usize::try_from(max).unwrap_or(0))
            .collect())
    }
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, CloudError> {
        self.count("cloudwatch:DescribeAlarms")?;
        self.inner.alarm_states(names).await
    }
    async fn db_instance(&self, id: &str) -> Result<DbInstance, CloudError> {
        self.count("rds:DescribeDBInstances")?;
        self.inner.db_instance(id).await
    }
    async fn db_proxies(&self) -> Result<Vec<DbProxy>, CloudError> {
        self.count("rds:DescribeDBProxies")?;
        self.inner.db_proxies().await
    }
    async fn db_proxy_targets(&self, proxy: &str) -> Result<Vec<String>, CloudError> {
        self.count("rds:DescribeDBProxyTargets")?;
        self.inner.db_proxy_targets(proxy).await
    }
    async fn db_parameter(&self, group: &str, name: &str) -> Result<Option<String>, CloudError> {
        self.count("rds:DescribeDBParameters")?;
        self.inner.db_parameter(group, name).await
    }
    async fn create_db_proxy(&self, p: &NewDbProxy, i: &str) -> Result<(), CloudError> {
        self.count("rds:CreateDBProxy")?;
        self.inner.create_db_proxy(p, i).await
    }
    async fn daily_costs(
        &self,
        s: chrono::NaiveDate,
        e: chrono::NaiveDate,
    ) -> Result<Vec<DailyCost>, CloudError> {
        self.count("ce:GetCostAndUsage")?;
        self.inner.daily_costs(s, e).await
    }
    async fn replication_group(&self, id: &str) -> Result<ReplicationGroup, CloudError> {
        self.count("elasticache:DescribeReplicationGroups")?;
        self.inner.replication_group(id).await
    }
}
