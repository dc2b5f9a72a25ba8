//! Where moto stops: moto 5.2.5 has no Lambda provisioned-concurrency
//! configs and no ElastiCache `Replicas` scalable dimension. The SDK calls
//! themselves are covered by aws-smithy-mocks unit tests in
//! `src/cloud/aws/provisioned.rs`; for the batch procedures through the real
//! server, this Cloud answers those operations from memory and passes every
//! other operation to the real AWS implementation (on moto).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scalebot::cloud::*;
use scalebot::domain::FunctionName;

pub struct PartialCloud {
    inner: Arc<dyn Cloud>,
    provisioned: Mutex<HashMap<String, Vec<ProvisionedConfig>>>,
    cache_targets: Mutex<Vec<ScalableTarget>>,
    /// Functions whose provisioned-concurrency calls fail, as AWS would.
    pub failing: Mutex<Vec<String>>,
}

impl PartialCloud {
    pub fn new(inner: Arc<dyn Cloud>) -> Self {
        Self {
            inner,
            provisioned: Mutex::new(HashMap::new()),
            cache_targets: Mutex::new(Vec::new()),
            failing: Mutex::new(Vec::new()),
        }
    }

    pub fn set_provisioned(&self, function: &str, qualifier: &str, value: i32) {
        let mut all = self.provisioned.lock().unwrap_or_else(|e| e.into_inner());
        let list = all.entry(function.to_owned()).or_default();
        list.retain(|c| c.qualifier != qualifier);
        list.push(ProvisionedConfig {
            qualifier: qualifier.to_owned(),
            requested: value,
            allocated: value,
            status: "READY".into(),
        });
    }

    pub fn provisioned_of(&self, function: &str) -> Vec<ProvisionedConfig> {
        self.provisioned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(function)
            .cloned()
            .unwrap_or_default()
    }

    pub fn cache_target(&self) -> Option<ScalableTarget> {
        self.cache_targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }

    pub fn set_cache_target(&self, t: ScalableTarget) {
        *self.cache_targets.lock().unwrap_or_else(|e| e.into_inner()) = vec![t];
    }

    fn fails(&self, function: &FunctionName) -> Option<CloudError> {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|f| f == function.as_str())
            .then(|| CloudError::Rejected {
                action: "lambda:DeleteProvisionedConcurrencyConfig".into(),
                message: "Rate exceeded (TooManyRequestsException)".into(),
            })
    }
}

#[async_trait]
impl Cloud for PartialCloud {
    async fn metric_data(&self, r: &MetricRequest) -> Result<Vec<Series>, CloudError> {
        self.inner.metric_data(r).await
    }
    async fn reserved_concurrency(&self, f: &FunctionName) -> Result<Option<i32>, CloudError> {
        self.inner.reserved_concurrency(f).await
    }
    async fn account_concurrency(&self) -> Result<AccountConcurrency, CloudError> {
        self.inner.account_concurrency().await
    }
    async fn put_reserved_concurrency(&self, f: &FunctionName, v: i32) -> Result<(), CloudError> {
        self.inner.put_reserved_concurrency(f, v).await
    }
    async fn delete_reserved_concurrency(&self, f: &FunctionName) -> Result<(), CloudError> {
        self.inner.delete_reserved_concurrency(f).await
    }
    async fn provisioned_configs(
        &self,
        f: &FunctionName,
    ) -> Result<Vec<ProvisionedConfig>, CloudError> {
        Ok(self.provisioned_of(f.as_str()))
    }
    async fn put_provisioned(&self, f: &FunctionName, q: &str, v: i32) -> Result<(), CloudError> {
        if let Some(e) = self.fails(f) {
            return Err(e);
        }
        self.set_provisioned(f.as_str(), q, v);
        Ok(())
    }
    async fn delete_provisioned(&self, f: &FunctionName, q: &str) -> Result<(), CloudError> {
        if let Some(e) = self.fails(f) {
            return Err(e);
        }
        let mut all = self.provisioned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = all.get_mut(f.as_str()) {
            list.retain(|c| c.qualifier != q);
        }
        Ok(())
    }
    async fn restart_function(&self, f: &FunctionName) -> Result<RestartOutcome, CloudError> {
        self.inner.restart_function(f).await
    }
    async fn scalable_targets(&self, ns: &str) -> Result<Vec<ScalableTarget>, CloudError> {
        if ns == "elasticache" {
            return Ok(self
                .cache_targets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone());
        }
        self.inner.scalable_targets(ns).await
    }
    async fn register_scalable_target(&self, t: &ScalableTarget) -> Result<(), CloudError> {
        if t.namespace == "elasticache" {
            self.set_cache_target(t.clone());
            return Ok(());
        }
        self.inner.register_scalable_target(t).await
    }
    async fn scaling_policies(&self, ns: &str) -> Result<Vec<ScalingPolicy>, CloudError> {
        if ns == "elasticache" {
            return Ok(Vec::new());
        }
        self.inner.scaling_policies(ns).await
    }
    async fn put_scaling_policy(&self, p: &ScalingPolicy) -> Result<(), CloudError> {
        self.inner.put_scaling_policy(p).await
    }
    async fn scaling_activities(
        &self,
        ns: &str,
        max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError> {
        self.inner.scaling_activities(ns, max).await
    }
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, CloudError> {
        self.inner.alarm_states(names).await
    }
    async fn db_instance(&self, id: &str) -> Result<DbInstance, CloudError> {
        self.inner.db_instance(id).await
    }
    async fn db_proxies(&self) -> Result<Vec<DbProxy>, CloudError> {
        self.inner.db_proxies().await
    }
    async fn db_proxy_targets(&self, proxy: &str) -> Result<Vec<String>, CloudError> {
        self.inner.db_proxy_targets(proxy).await
    }
    async fn db_parameter(&self, group: &str, name: &str) -> Result<Option<String>, CloudError> {
        self.inner.db_parameter(group, name).await
    }
    async fn create_db_proxy(&self, p: &NewDbProxy, i: &str) -> Result<(), CloudError> {
        self.inner.create_db_proxy(p, i).await
    }
    async fn daily_costs(
        &self,
        s: chrono::NaiveDate,
        e: chrono::NaiveDate,
    ) -> Result<Vec<DailyCost>, CloudError> {
        self.inner.daily_costs(s, e).await
    }
    async fn replication_group(&self, id: &str) -> Result<ReplicationGroup, CloudError> {
        self.inner.replication_group(id).await
    }
}
