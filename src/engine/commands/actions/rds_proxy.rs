//! `/scale rds proxy <db>`.
//!
//! Replaces the runbook's *RDS Connection Pool Exhaustion*, step 2
//! (`aws rds create-db-proxy … --require-tls`). The runbook leaves out what
//! a proxy needs to work (the credentials secret and the role that reads
//! it) and never registers the instance as the proxy's target; the bot
//! takes both from config and registers the target, with TLS required.

use crate::catalog::Invocation;
use crate::cloud::NewDbProxy;
use crate::engine::plans::change::Change;
use crate::engine::request::{ActionError, Outcome, Proposal};

use super::ActionContext;

fn engine_family(engine: &str) -> Option<&'static str> {
    let e = engine.to_ascii_lowercase();
    if e.contains("postgres") {
        Some("POSTGRESQL")
    } else if e.contains("mysql") || e.contains("mariadb") {
        Some("MYSQL")
    } else if e.contains("sqlserver") {
        Some("SQLSERVER")
    } else {
        None
    }
}

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let db = inv
        .word("db")
        .map(str::to_owned)
        .unwrap_or_else(|| cx.settings.runbook.database.clone());
    let cfg = &cx.settings.rds_proxy;
    let missing: Vec<&str> = [
        ("rds_proxy.secret_arn", cfg.secret_arn.is_empty()),
        ("rds_proxy.role_arn", cfg.role_arn.is_empty()),
        ("rds_proxy.subnet_ids", cfg.subnet_ids.is_empty()),
    ]
    .into_iter()
    .filter(|(_, m)| *m)
    .map(|(k, _)| k)
    .collect();
    if !missing.is_empty() {
        return Err(ActionError::Refused(format!(
            "an RDS Proxy needs {} in the config; the runbook's command leaves them out and would fail",
            missing.join(", ")
        )));
    }
    let instance = cx.cloud.db_instance(&db).await?;
    let family = match cfg.engine_family {
        Some(family) => family.as_str(),
        None => engine_family(&instance.engine).ok_or_else(|| {
            ActionError::Refused(format!(
                "RDS Proxy does not support the engine `{}` of `{db}`",
                instance.engine
            ))
        })?,
    };
    let name = format!("{db}-proxy");
    if let Some(p) = cx
        .cloud
        .db_proxies()
        .await?
        .into_iter()
        .find(|p| p.name == name)
    {
        return Err(ActionError::Refused(format!(
            "RDS Proxy `{}` already exists ({}); point the functions at its endpoint {}",
            p.name,
            p.status,
            p.endpoint.unwrap_or_else(|| "(not yet available)".into())
        )));
    }
    let proxy = NewDbProxy {
        name,
        engine_family: family.into(),
        secret_arn: cfg.secret_arn.clone(),
        role_arn: cfg.role_arn.clone(),
        subnet_ids: cfg.subnet_ids.clone(),
        security_group_ids: cfg.security_group_ids.clone(),
        require_tls: true,
    };
    let notes = vec![
        format!(
            "Creates `{}` ({family}, TLS required) in subnets {} and registers `{db}` as its target.",
            proxy.name,
            proxy.subnet_ids.join(", ")
        ),
        "The functions keep using the instance endpoint until their database host is switched to the \
         proxy endpoint; a proxy takes a few minutes to become available."
            .into(),
    ];
    Ok(Outcome::Proposal(Proposal::new(
        vec![Change::DbProxy {
            instance: db,
            proxy,
        }],
        notes,
    )))
}
