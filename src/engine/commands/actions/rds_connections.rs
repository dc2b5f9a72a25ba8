//! `/scale rds connections [db]`.
//!
//! Replaces the runbook's *RDS Connection Pool Exhaustion*, step 1 ("check
//! current connections": `DatabaseConnections`, Maximum, 5-minute periods,
//! last 10 minutes). The bash prints two bare numbers for a hard-coded
//! instance; this checks that the instance exists, puts the figure next to
//! the instance's `max_connections` (`rds_limit`) and its own 3-hour
//! baseline and CPU, charts both at 1-minute resolution, and says whether
//! an RDS Proxy already fronts the database (by the proxies' registered
//! targets), with step 2 ("enable RDS Proxy") one click away when none does.
//!
//! One `DescribeDBInstances` call, one `DescribeDBParameters` call when the
//! instance has a parameter group, `DescribeDBProxies` and one
//! `DescribeDBProxyTargets` per proxy, and one `GetMetricData` exchange for
//! the figures and the chart.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::catalog::Invocation;
use crate::chart::plan::{ChartPlan, QuerySet, by_id, image};
use crate::chat::{Button, ButtonAction, ButtonStyle, Message, Tone};
use crate::cloud::{CloudError, DbInstance, DbProxy, Series};
use crate::engine::request::{ActionError, Outcome, Reply};

use super::ActionContext;
use super::rds_limit::{Limit, max_connections};
use super::rds_proxy::{Proxies, proxies_of};
use crate::format::{number, percent, stamp, time_of_day};

/// A share of `max_connections` at which new connections are close to
/// being refused.
const NEAR_LIMIT: f64 = 0.8;

/// RDS's identifier rules, checked here so that a typo never reaches AWS
/// (and never ends up in a button's command).
fn valid_identifier(db: &str) -> bool {
    db.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && db.len() <= 63
        && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !db.ends_with('-')
        && !db.contains("--")
}

/// The `db` argument (else the configured database), checked.
fn database(cx: &ActionContext<'_>, inv: &Invocation) -> Result<String, ActionError> {
    let db = inv
        .word("db")
        .unwrap_or(cx.settings.runbook.database.as_str())
        .to_owned();
    if !valid_identifier(&db) {
        return Err(ActionError::Refused(format!(
            "`{}` is not an RDS instance identifier (1-63 letters, digits and single hyphens, starting with a letter)",
            crate::domain::truncate(&db, 70)
        )));
    }
    Ok(db)
}

pub(super) async fn run(cx: &ActionContext<'_>, inv: &Invocation) -> Result<Outcome, ActionError> {
    let db = database(cx, inv)?;
    let window = Duration::minutes(inv.spec.param_i64("window_minutes", 10).clamp(1, 1440));
    let period = inv.spec.param_i64("period_seconds", 300).clamp(60, 86_400) as u32;

    // Metrics of a database that does not exist are merely empty; asking
    // RDS first turns a typo into "does not exist" instead of "no data".
    let instance = cx.cloud.db_instance(&db).await?;
    // The proxy is context, not the answer: without rds:DescribeDBProxies
    // the connection figures are still worth posting.
    let proxies = proxies_of(cx, &db).await;
    let limit = max_connections(cx, &instance).await;

    let now = cx.clock.now();
    let dims = || vec![("DBInstanceIdentifier".to_owned(), db.clone())];
    let mut queries = QuerySet::default();
    let q_conn = queries.add("AWS/RDS", "DatabaseConnections", dims(), "Maximum", period);
    let q_conn_1m = queries.add("AWS/RDS", "DatabaseConnections", dims(), "Maximum", 60);
    let q_cpu_1m = queries.add("AWS/RDS", "CPUUtilization", dims(), "Average", 60);
    let vars = BTreeMap::from([("db".to_owned(), db.clone())]);
    let chart = inv
        .spec
        .chart
        .as_deref()
        .and_then(|name| cx.charts.get(name))
        .map(|spec| ChartPlan::new(spec, &vars, now, &mut queries));
    let start = chart
        .as_ref()
        .map(|c| c.start)
        .unwrap_or(now - Duration::hours(3))
        .min(now - window - Duration::seconds(i64::from(period)));
    let results = by_id(
        cx.cloud
            .metric_data(&queries.into_request(start, now))
            .await?,
    );
    let series = |id: &str| results.get(id).cloned().unwrap_or_default();
    let since = now - window;
    let mut figures = Figures::new(
        &series(&q_conn),
        &series(&q_conn_1m),
        &series(&q_cpu_1m),
        since,
    );
    figures.limit = Some(limit);

    let proxy = ProxyStatus::of(proxies);
    let mut message = reply(cx, &db, &instance, &figures, &proxy, window, period, now);
    let mut images = Vec::new();
    if let Some(plan) = chart {
        let data = plan.data(&results, cx.tz);
        images.push(image(
            &data,
            format!("rds-connections-{db}-{}.png", now.format("%Y%m%dT%H%M")),
        )?);
    }
    // Step 2 of the runbook; it still goes through a plan and a
    // confirmation. Not offered when the proxies could not be read: that
    // might create a second proxy next to an existing one.
    if matches!(proxy, ProxyStatus::None(_)) {
        message.buttons.push(Button {
            label: "Enable RDS Proxy".into(),
            action: ButtonAction::Run {
                command: format!("rds proxy {db}"),
                incident: None,
            },
            style: ButtonStyle::Primary,
            confirm: None,
        });
    }
    Ok(Outcome::Reply(Reply { message, images }))
}

/// The connections in the window against the instance's recent past.
fn headline(
    figures: &Figures,
    instance: &DbInstance,
    window: Duration,
    period: u32,
    tz: chrono_tz::Tz,
) -> String {
    let minutes = window.num_minutes();
    let mut text = match figures.recent_max {
        Some(max) => format!(
            "*{} connections* at most in the last {minutes} minutes ({}-minute maxima: {}).",
            number(max),
            period / 60,
            figures
                .buckets
                .iter()
                .map(|(t, v)| format!("{} from {}", number(*v), time_of_day(*t, tz)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "No `DatabaseConnections` datapoints in the last {minutes} minutes: the instance is `{}`; \
             a stopped instance or a wrong identifier publishes nothing.",
            instance.status
        ),
    };
    text.push_str(&figures.limit_sentence());
    let surge = figures.surge();
    if let (Some(max), Some(base)) = (figures.recent_max, figures.baseline)
        && surge
    {
        text.push_str(&format!(
            "\nThat is {:.1}× the 3-hour median of {}: a burst of new Lambda environments, each opening \
             its own connections, is the usual cause.",
            max / base,
            number(base)
        ));
    }
    text
}

/// The reply's text and fields.
#[allow(clippy::too_many_arguments)] // each is one figure of the reply
fn reply(
    cx: &ActionContext<'_>,
    db: &str,
    instance: &DbInstance,
    figures: &Figures,
    proxy: &ProxyStatus,
    window: Duration,
    period: u32,
    now: DateTime<Utc>,
) -> Message {
    let tz = cx.tz;
    let minutes = window.num_minutes();
    let mut text = headline(figures, instance, window, period, tz);
    text.push('\n');
    text.push_str(&proxy.sentence(db));

    let tone = if instance.status != "available"
        || figures.recent_max.is_none()
        || figures.surge()
        || figures.near_limit()
    {
        Tone::Warning
    } else if matches!(proxy, ProxyStatus::Fronted(_)) {
        Tone::Good
    } else {
        Tone::Neutral
    };
    let at = |p: Option<(DateTime<Utc>, f64)>| {
        p.map(|(t, v)| format!("{} at {}", number(v), time_of_day(t, tz)))
            .unwrap_or_else(|| "n/a".into())
    };
    Message {
        title: Some(format!("RDS connections: {db}")),
        tone,
        text: text.into(),
        footer: Some(
            format!(
                "CloudWatch AWS/RDS · {} · {} · runbook: RDS connection pool exhaustion, step 1",
                cx.region,
                stamp(now, tz)
            )
            .into(),
        ),
        ..Default::default()
    }
    .field(
        format!("Connections (max, {minutes} min)"),
        figures
            .recent_max
            .map(number)
            .unwrap_or_else(|| "n/a".into()),
    )
    .field("Latest (1 min)", at(figures.latest))
    .field("Peak (3 h)", at(figures.peak))
    .field(
        format!("CPU (avg, {minutes} min)"),
        figures
            .cpu
            .map(|c| format!("{} %", number(c)))
            .unwrap_or_else(|| "n/a".into()),
    )
    .field("max_connections", figures.limit_field())
    .field(
        "Instance",
        format!(
            "{} · {} · {}",
            instance.engine, instance.instance_class, instance.status
        ),
    )
    .field("RDS Proxy", proxy.field())
}

#[derive(Debug, Default, PartialEq)]
struct Figures {
    /// The runbook's figure: the period maxima that start in the window.
    buckets: Vec<(DateTime<Utc>, f64)>,
    recent_max: Option<f64>,
    latest: Option<(DateTime<Utc>, f64)>,
    peak: Option<(DateTime<Utc>, f64)>,
    /// The median 1-minute maximum before the window.
    baseline: Option<f64>,
    cpu: Option<f64>,
    /// `max_connections`, or why it is unknown.
    limit: Option<Result<Limit, String>>,
}

impl Figures {
    /// The window's maximum as a share of `max_connections`.
    fn used(&self) -> Option<(f64, &Limit)> {
        match (&self.limit, self.recent_max) {
            (Some(Ok(l)), Some(max)) if l.value > 0.0 => Some((max / l.value, l)),
            _ => None,
        }
    }

    fn near_limit(&self) -> bool {
        self.used().is_some_and(|(u, _)| u >= NEAR_LIMIT)
    }

    fn limit_sentence(&self) -> String {
        match (self.used(), &self.limit) {
            (Some((used, l)), _) => format!(
                "\nThat is {} of max_connections {} ({}){}",
                percent(used),
                number(l.value),
                l.source,
                if used >= NEAR_LIMIT {
                    ": new connections are refused at the limit, so pool them (RDS Proxy) or shed load."
                } else {
                    "."
                }
            ),
            (None, Some(Err(why))) => format!("\nmax_connections is unknown: {why}."),
            _ => String::new(),
        }
    }

    fn limit_field(&self) -> String {
        match &self.limit {
            Some(Ok(l)) => format!(
                "{}{}",
                number(l.value),
                if l.estimate { " (estimate)" } else { "" }
            ),
            _ => "unknown".into(),
        }
    }

    /// Well above the baseline, by a margin that matters: a handful of
    /// connections more on an idle database is not a surge.
    fn surge(&self) -> bool {
        matches!((self.recent_max, self.baseline),
            (Some(max), Some(base)) if base > 0.0 && max >= base * 1.5 && max - base >= 10.0)
    }

    fn new(periods: &Series, minutes: &Series, cpu: &Series, since: DateTime<Utc>) -> Self {
        let buckets: Vec<_> = periods
            .points
            .iter()
            .filter(|(t, _)| *t >= since)
            .copied()
            .collect();
        let recent_max = buckets.iter().map(|p| p.1).reduce(f64::max);
        let peak = minutes
            .points
            .iter()
            .copied()
            .reduce(|a, b| if b.1 > a.1 { b } else { a });
        let mut before: Vec<f64> = minutes
            .points
            .iter()
            .filter(|(t, _)| *t < since)
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .collect();
        before.sort_by(f64::total_cmp);
        let baseline = (!before.is_empty()).then(|| before[before.len() / 2]);
        let recent_cpu: Vec<f64> = cpu
            .points
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|p| p.1)
            .collect();
        let cpu = (!recent_cpu.is_empty())
            .then(|| recent_cpu.iter().sum::<f64>() / recent_cpu.len() as f64);
        Self {
            buckets,
            recent_max,
            latest: minutes.points.last().copied(),
            peak,
            baseline,
            cpu,
            limit: None,
        }
    }
}

#[derive(Debug)]
enum ProxyStatus {
    Fronted(DbProxy),
    /// No proxy has the database as a target; the names of the others.
    None(Vec<String>),
    /// `DescribeDBProxies` failed; the sentence says why.
    Unknown(String),
}

impl ProxyStatus {
    fn of(proxies: Result<Proxies, CloudError>) -> Self {
        match proxies {
            Ok(mut p) if !p.fronting.is_empty() => Self::Fronted(p.fronting.remove(0)),
            Ok(p) if !p.unread.is_empty() => Self::Unknown(format!(
                "the targets of {} could not be read",
                p.unread.join(", ")
            )),
            Ok(p) => Self::None(p.others),
            Err(e) => Self::Unknown(e.to_string()),
        }
    }

    fn sentence(&self, db: &str) -> String {
        match self {
            Self::Fronted(p) => format!(
                "RDS Proxy `{}` fronts it ({}): functions that connect through {} share its pool.",
                p.name,
                p.status,
                p.endpoint
                    .as_deref()
                    .map(|e| format!("`{e}`"))
                    .unwrap_or_else(|| "its endpoint".into())
            ),
            Self::None(others) if others.is_empty() => {
                format!("No RDS Proxy fronts `{db}`: enabling one is the runbook's step 2.")
            }
            Self::None(others) => format!(
                "No RDS Proxy has `{db}` as a registered target (the region's proxies: {}). \
                 Enabling one is the runbook's step 2.",
                others
                    .iter()
                    .take(5)
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Unknown(why) => format!("Whether an RDS Proxy fronts it is unknown: {why}."),
        }
    }

    fn field(&self) -> String {
        match self {
            Self::Fronted(p) => format!(
                "`{}` ({}{})",
                p.name,
                p.status,
                if p.require_tls { ", TLS required" } else { "" }
            ),
            Self::None(_) => "none".into(),
            Self::Unknown(_) => "unknown".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::cloud::CloudError;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(minute)
    }

    fn series(points: &[(i64, f64)]) -> Series {
        Series {
            id: "q".into(),
            points: points.iter().map(|(m, v)| (at(*m), *v)).collect(),
        }
    }

    #[test]
    fn identifiers_follow_the_rds_rules() {
        assert!(valid_identifier("matbakh-db"));
        assert!(valid_identifier("db1"));
        assert!(!valid_identifier("1db"));
        assert!(!valid_identifier("db--x"));
        assert!(!valid_identifier("db-"));
        assert!(!valid_identifier("db;rm"));
        assert!(!valid_identifier(&"a".repeat(64)));
    }

    #[test]
    fn figures_split_the_window_from_the_baseline() {
        // The window starts at minute 10.
        let minutes = series(&[
            (0, 40.0),
            (2, 40.0),
            (4, 120.0),
            (6, 40.0),
            (11, 60.0),
            (13, 87.0),
            (14, 85.0),
        ]);
        let periods = series(&[(5, 40.0), (10, 87.0)]);
        let cpu = series(&[(9, 90.0), (11, 40.0), (12, 44.0)]);
        let f = Figures::new(&periods, &minutes, &cpu, at(10));
        assert_eq!(f.buckets, vec![(at(10), 87.0)]);
        assert_eq!(f.recent_max, Some(87.0));
        assert_eq!(f.latest, Some((at(14), 85.0)));
        assert_eq!(f.peak, Some((at(4), 120.0)));
        assert_eq!(f.baseline, Some(40.0));
        assert_eq!(f.cpu, Some(42.0));
        assert!(f.surge(), "87 against a median of 40");
        let small = Figures {
            recent_max: Some(9.0),
            baseline: Some(2.0),
            ..Figures::default()
        };
        assert!(!small.surge(), "seven more connections is no surge");
        let idle = Figures {
            recent_max: Some(30.0),
            baseline: Some(0.0),
            ..Figures::default()
        };
        assert!(!idle.surge(), "no ratio against nothing");
        assert_eq!(
            Figures::new(
                &Series::default(),
                &Series::default(),
                &Series::default(),
                at(0)
            ),
            Figures::default()
        );
    }

    #[test]
    fn a_proxy_is_matched_by_its_target_and_a_failure_is_unknown() {
        let proxy = |name: &str| DbProxy {
            name: name.into(),
            status: "available".into(),
            engine_family: "POSTGRESQL".into(),
            require_tls: true,
            endpoint: Some(format!("{name}.proxy-x.eu-central-1.rds.amazonaws.com")),
        };
        let s = ProxyStatus::of(Ok(Proxies {
            fronting: vec![proxy("pool")],
            others: vec!["matbakh-db-proxy".into()],
            unread: vec![],
        }));
        assert!(matches!(&s, ProxyStatus::Fronted(p) if p.name == "pool"));
        assert_eq!(s.field(), "`pool` (available, TLS required)");

        let s = ProxyStatus::of(Ok(Proxies {
            others: vec!["other".into()],
            ..Proxies::default()
        }));
        assert!(
            s.sentence("matbakh-db").contains("`other`"),
            "{}",
            s.sentence("matbakh-db")
        );
        assert_eq!(s.field(), "none");

        let s = ProxyStatus::of(Ok(Proxies {
            unread: vec!["`x` (denied)".into()],
            ..Proxies::default()
        }));
        assert_eq!(s.field(), "unknown");

        let s = ProxyStatus::of(Err(CloudError::AccessDenied {
            action: "rds:DescribeDBProxies".into(),
        }));
        assert_eq!(s.field(), "unknown");
        assert!(
            s.sentence("matbakh-db")
                .contains("not allowed to call rds:DescribeDBProxies")
        );
    }
}
