//! `/scale rds proxy <db>`.
//!
//! Replaces the runbook's *RDS Connection Pool Exhaustion*, step 2
//! (`aws rds create-db-proxy … --require-tls`). The runbook leaves out what
//! a proxy needs to work (the credentials secret and the role that reads
//! it) and never registers the instance as the proxy's target; the bot
//! takes both from config and registers the target, with TLS required.
//!
//! Whether a proxy already fronts the database is decided by the proxies'
//! registered targets (`DescribeDBProxyTargets`), not by the runbook's
//! `<db>-proxy` name: a proxy can be called anything.

use crate::catalog::Invocation;
use crate::cloud::{CloudError, DbProxy, NewDbProxy};
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

/// The region's proxies sorted by whether they route to one database.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Proxies {
    /// Those with the database among their registered targets.
    pub fronting: Vec<DbProxy>,
    /// The names of the others.
    pub others: Vec<String>,
    /// Proxies whose targets could not be read, with the reason.
    pub unread: Vec<String>,
}

/// `DescribeDBProxies`, then `DescribeDBProxyTargets` for each (a region
/// holds at most a few dozen proxies).
pub(super) async fn proxies_of(cx: &ActionContext<'_>, db: &str) -> Result<Proxies, CloudError> {
    let mut out = Proxies::default();
    for p in cx.cloud.db_proxies().await? {
        match cx.cloud.db_proxy_targets(&p.name).await {
            Ok(targets) if targets.iter().any(|t| t == db) => out.fronting.push(p),
            Ok(_) => out.others.push(p.name),
            Err(e) => out.unread.push(format!("`{}` ({e})", p.name)),
        }
    }
    Ok(out)
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
    refuse_if_fronted(cx, &db, &name).await?;
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

/// A second proxy in front of the same database is never the fix, and
/// the runbook's name may be taken by a proxy of another database.
async fn refuse_if_fronted(
    cx: &ActionContext<'_>,
    db: &str,
    name: &str,
) -> Result<(), ActionError> {
    let proxies = proxies_of(cx, db).await?;
    if let Some(p) = proxies.fronting.first() {
        return Err(ActionError::Refused(format!(
            "RDS Proxy `{}` already fronts `{db}` (it is a registered target; {}); point the functions \
             at its endpoint {}",
            p.name,
            p.status,
            p.endpoint.as_deref().unwrap_or("(not yet available)")
        )));
    }
    if !proxies.unread.is_empty() {
        return Err(ActionError::Refused(format!(
            "whether a proxy already fronts `{db}` is unknown: the targets of {} could not be read",
            proxies.unread.join(", ")
        )));
    }
    if proxies.others.iter().any(|o| o == name) {
        return Err(ActionError::Refused(format!(
            "an RDS Proxy named `{name}` exists but does not have `{db}` as a target; register \
             `{db}` with it, or remove it first"
        )));
    }
    Ok(())
}
