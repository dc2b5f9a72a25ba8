//! RDS: the database behind the functions, and the proxy that keeps a
//! burst of Lambda environments from exhausting its connections.

use aws_sdk_rds::types::{AuthScheme, EngineFamily, UserAuthConfig};

use super::{AwsCloud, MAX_PAGES, classify, next_page};
use crate::cloud::{CloudError, DbInstance, DbProxy, NewDbProxy};

/// RDS Proxy creates this target group with every proxy.
const TARGET_GROUP: &str = "default";

impl AwsCloud {
    pub(super) async fn describe_db_instance(&self, id: &str) -> Result<DbInstance, CloudError> {
        const ACTION: &str = "rds:DescribeDBInstances";
        let what = || format!("RDS instance `{id}`");
        let result = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| classify(ACTION, &self.region, what, e))
            .and_then(|out| {
                out.db_instances()
                    .first()
                    .map(|i| DbInstance {
                        id: i.db_instance_identifier().unwrap_or(id).to_owned(),
                        engine: i.engine().unwrap_or_default().to_owned(),
                        status: i.db_instance_status().unwrap_or_default().to_owned(),
                        arn: i.db_instance_arn().unwrap_or_default().to_owned(),
                        instance_class: i.db_instance_class().unwrap_or_default().to_owned(),
                        parameter_group: i
                            .db_parameter_groups()
                            .first()
                            .and_then(|g| g.db_parameter_group_name())
                            .map(str::to_owned),
                    })
                    .ok_or_else(|| CloudError::NotFound {
                        what: what(),
                        region: self.region.clone(),
                    })
            });
        self.observe(ACTION, &result);
        result
    }

    pub(super) async fn describe_db_proxies(&self) -> Result<Vec<DbProxy>, CloudError> {
        const ACTION: &str = "rds:DescribeDBProxies";
        let mut proxies = Vec::new();
        let mut marker: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .rds
                .describe_db_proxies()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || "RDS proxies".into(), e));
            self.observe(ACTION, &result);
            let out = result?;
            proxies.extend(out.db_proxies().iter().map(|p| {
                DbProxy {
                    name: p.db_proxy_name().unwrap_or_default().to_owned(),
                    status: p
                        .status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    engine_family: p.engine_family().unwrap_or_default().to_owned(),
                    require_tls: p.require_tls().unwrap_or(false),
                    endpoint: p.endpoint().map(str::to_owned),
                }
            }));
            match next_page(out.marker()) {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        Ok(proxies)
    }

    pub(super) async fn describe_db_proxy_targets(
        &self,
        proxy: &str,
    ) -> Result<Vec<String>, CloudError> {
        const ACTION: &str = "rds:DescribeDBProxyTargets";
        let mut targets = Vec::new();
        let mut marker: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .rds
                .describe_db_proxy_targets()
                .db_proxy_name(proxy)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(ACTION, &self.region, || format!("RDS proxy `{proxy}`"), e));
            self.observe(ACTION, &result);
            let out = result?;
            targets.extend(
                out.targets()
                    .iter()
                    .filter_map(|t| t.rds_resource_id().map(str::to_owned)),
            );
            match next_page(out.marker()) {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        Ok(targets)
    }

    /// Only the parameters set in the group itself (`Source=user`): an
    /// engine default is the engine's formula, which the caller knows.
    pub(super) async fn describe_db_parameter(
        &self,
        group: &str,
        name: &str,
    ) -> Result<Option<String>, CloudError> {
        const ACTION: &str = "rds:DescribeDBParameters";
        let mut marker: Option<String> = None;
        for _page in 0..MAX_PAGES {
            let result = self
                .rds
                .describe_db_parameters()
                .db_parameter_group_name(group)
                .source("user")
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| {
                    classify(
                        ACTION,
                        &self.region,
                        || format!("DB parameter group `{group}`"),
                        e,
                    )
                });
            self.observe(ACTION, &result);
            let out = result?;
            if let Some(p) = out
                .parameters()
                .iter()
                .find(|p| p.parameter_name() == Some(name))
            {
                return Ok(p.parameter_value().map(str::to_owned));
            }
            match next_page(out.marker()) {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        Ok(None)
    }

    /// A proxy is useless until it has a target, so both steps run here;
    /// if the second fails, the error names `RegisterDBProxyTargets` and the
    /// proxy is left for the user to retry the registration or remove.
    pub(super) async fn create_proxy_for_instance(
        &self,
        proxy: &NewDbProxy,
        instance: &str,
    ) -> Result<(), CloudError> {
        const CREATE: &str = "rds:CreateDBProxy";
        const REGISTER: &str = "rds:RegisterDBProxyTargets";
        let auth = UserAuthConfig::builder()
            .auth_scheme(AuthScheme::Secrets)
            .secret_arn(&proxy.secret_arn)
            .build();
        let created = self
            .rds
            .create_db_proxy()
            .db_proxy_name(&proxy.name)
            .engine_family(EngineFamily::from(proxy.engine_family.as_str()))
            .auth(auth)
            .role_arn(&proxy.role_arn)
            .set_vpc_subnet_ids(Some(proxy.subnet_ids.clone()))
            // None lets AWS use the VPC's default group; an empty list would
            // be sent as a list with nothing in it.
            .set_vpc_security_group_ids(
                (!proxy.security_group_ids.is_empty()).then(|| proxy.security_group_ids.clone()),
            )
            .require_tls(proxy.require_tls)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    CREATE,
                    &self.region,
                    || format!("RDS proxy `{}`", proxy.name),
                    e,
                )
            });
        self.observe(CREATE, &created);
        created?;
        let registered = self
            .rds
            .register_db_proxy_targets()
            .db_proxy_name(&proxy.name)
            .target_group_name(TARGET_GROUP)
            .db_instance_identifiers(instance)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    REGISTER,
                    &self.region,
                    || format!("RDS instance `{instance}` or proxy `{}`", proxy.name),
                    e,
                )
            });
        self.observe(REGISTER, &registered);
        registered
    }
}
