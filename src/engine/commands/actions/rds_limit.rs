//! An RDS instance's `max_connections`: the figure its connections run
//! out at, besides its own 3-hour median.
//!
//! The value set in the instance's DB parameter group when it is a number;
//! otherwise the engine's default formula, from the RDS User Guide
//! ("Maximum number of database connections", Amazon RDS quotas):
//! PostgreSQL `LEAST({DBInstanceClassMemory/9531392}, 5000)`, MySQL and
//! MariaDB `{DBInstanceClassMemory/12582880}`. `DBInstanceClassMemory` is
//! the class's memory less what RDS keeps for the operating system and its
//! own processes, which AWS does not publish; the bot uses the class's
//! nominal memory (EC2 instance types of the same name), so the figure is
//! an upper estimate and says so.

use crate::cloud::DbInstance;

use super::ActionContext;
use crate::format::number;

/// `max_connections` and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Limit {
    pub value: f64,
    /// `parameter group \`app-pg\`` or the formula with its inputs.
    pub source: String,
    /// A formula on nominal memory rather than a configured value.
    pub estimate: bool,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The nominal memory of a DB instance class, in GiB: burstable classes by
/// size, general-purpose (m) at 4 GiB per vCPU, memory-optimised (r) at 8.
fn class_memory_gib(class: &str) -> Option<f64> {
    let rest = class.strip_prefix("db.")?;
    let (family, size) = rest.split_once('.')?;
    let kind = family.chars().next()?;
    let burstable = match size {
        "micro" => Some(1.0),
        "small" => Some(2.0),
        "medium" => Some(4.0),
        _ => None,
    };
    // large = 2 vCPU, xlarge = 4, Nxlarge = 4N.
    let vcpus = match size {
        "large" => Some(2.0),
        "xlarge" => Some(4.0),
        s => s
            .strip_suffix("xlarge")
            .and_then(|n| n.parse::<f64>().ok())
            .map(|n| 4.0 * n),
    };
    match kind {
        't' => burstable.or_else(|| vcpus.map(|v| v * 4.0)),
        'm' => vcpus.map(|v| v * 4.0),
        'r' => vcpus.map(|v| v * 8.0),
        _ => None,
    }
}

/// The engine's default `max_connections` for the class.
pub(super) fn engine_default(engine: &str, class: &str) -> Option<Limit> {
    let gib = class_memory_gib(class)?;
    let bytes = gib * GIB;
    let e = engine.to_ascii_lowercase();
    // Aurora MySQL's default is a different (logarithmic) formula: unknown
    // here rather than wrong.
    if e.starts_with("aurora-mysql") || e == "aurora" {
        return None;
    }
    let (value, formula) = if e.contains("postgres") {
        (
            (bytes / 9_531_392.0).floor().min(5000.0),
            "LEAST({DBInstanceClassMemory/9531392}, 5000)",
        )
    } else if e.contains("mysql") || e.contains("mariadb") {
        (
            (bytes / 12_582_880.0).floor(),
            "{DBInstanceClassMemory/12582880}",
        )
    } else {
        return None;
    };
    Some(Limit {
        value,
        source: format!(
            "{engine} default {formula} for {class}'s {} GiB, an upper estimate",
            number(gib)
        ),
        estimate: true,
    })
}

/// The instance's limit: its parameter group's number, else the formula.
/// `None` with the reason when neither is known.
pub(super) async fn max_connections(
    cx: &ActionContext<'_>,
    instance: &DbInstance,
) -> Result<Limit, String> {
    let mut why_not = String::new();
    if let Some(group) = &instance.parameter_group {
        match cx.cloud.db_parameter(group, "max_connections").await {
            Ok(Some(v)) => match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => {
                    return Ok(Limit {
                        value: n,
                        source: format!("parameter group `{group}`"),
                        estimate: false,
                    });
                }
                _ => {}
            },
            Ok(None) => {}
            Err(e) => why_not = format!(" (parameter group `{group}` unreadable: {e})"),
        }
    }
    match engine_default(&instance.engine, &instance.instance_class) {
        Some(mut l) => {
            l.source.push_str(&why_not);
            Ok(l)
        }
        None => Err(format!(
            "no known max_connections formula for {} on {}{why_not}",
            instance.engine, instance.instance_class
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_have_their_nominal_memory() {
        assert_eq!(class_memory_gib("db.t3.micro"), Some(1.0));
        assert_eq!(class_memory_gib("db.t4g.medium"), Some(4.0));
        assert_eq!(class_memory_gib("db.t3.xlarge"), Some(16.0));
        assert_eq!(class_memory_gib("db.m5.large"), Some(8.0));
        assert_eq!(class_memory_gib("db.m6g.4xlarge"), Some(64.0));
        assert_eq!(class_memory_gib("db.r6g.2xlarge"), Some(64.0));
        assert_eq!(class_memory_gib("db.x2g.large"), None);
        assert_eq!(class_memory_gib("m5.large"), None);
        assert_eq!(class_memory_gib("db.serverless"), None);
    }

    #[test]
    fn the_engine_formulas_follow_the_rds_guide() {
        // 1 GiB / 9531392 = 112.6.
        let pg = engine_default("postgres", "db.t3.micro").map(|l| l.value);
        assert_eq!(pg, Some(112.0));
        // 512 GiB would be 57,680; PostgreSQL's formula stops at 5,000.
        let big = engine_default("postgres", "db.r6g.16xlarge").map(|l| l.value);
        assert_eq!(big, Some(5000.0));
        // 8 GiB / 12582880 = 682.7.
        let my = engine_default("mysql", "db.m5.large").map(|l| l.value);
        assert_eq!(my, Some(682.0));
        assert_eq!(engine_default("sqlserver-se", "db.m5.large"), None);
    }
}
